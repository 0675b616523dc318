# Compiled layout of portico/bus/applier.py: the route feed's per-message decode and apply as one C call from
# the frame parser; its counters are C integers of the compiled RouterMetrics, the apply a C call into messages.
cimport cython
from portico.observe.metrics cimport RouterMetrics
from portico.bus.messages cimport apply_fields, checked_tags, strict_fields

cdef Py_ssize_t _URIS_AT, _TAGS_AT

cdef class PayloadApplier:
    cdef public object table, clock, batch_time, _malformed_log
    cdef public RouterMetrics metrics
    cdef public Py_ssize_t _freeze_at, _headroom
    @cython.locals(fields=tuple)
    cpdef register(self, bytes data)
    cpdef _check_freeze(self)
    cpdef unregister(self, bytes data)
    cpdef _malformed(self, str subject, bytes data, err)
    cpdef _apply_failed(self, str subject, bytes data)
