# Compiled layout of portico/proxy/headers.py: the request id pool as a typed list and a C index.
cimport cython

cdef class _RequestIds:
    cdef public list ids
    cdef public Py_ssize_t next

    @cython.locals(rid=bytes)
    cpdef bytes take(self)
    @cython.locals(raw=bytearray, ids=bytearray, width=Py_ssize_t, offset=Py_ssize_t)
    cpdef refill(self)
    cpdef forget(self)

cdef _RequestIds _IDS

cpdef bytes request_id()
cpdef object header_kind(dict kinds, dict special, bytes name, object plain)
cpdef list connection_tokens(value)
