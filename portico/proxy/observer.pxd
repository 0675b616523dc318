# Compiled layout of portico/proxy/observer.py: the finished exchange read through typed slots, the counters
# C adds, and the access log line one C call (AccessLog.write_line, its values as arguments).
cimport cython
from cpython.time cimport monotonic
from portico.proxy.exchange cimport Exchange
from portico.proxy.client_base cimport ClientBase
from portico.observe.metrics cimport RouterMetrics
from portico.observe.access_log cimport AccessLog
from portico.observe.route_traffic cimport count_request
from portico.routes.guids cimport app_id_of, instance_id_of

cdef class ExchangeObserver:
    cdef dict __dict__
    cdef public RouterMetrics metrics
    cdef public AccessLog access_log
    cdef public object _ids_of
    cdef public str _app_id, _instance_id

    @cython.locals(status=int, c=int, total=double, bucket=int, micros=cython.longlong, waited=double, gorouter_time=double, uri=bytes,
                   client=ClientBase, log=AccessLog)
    cpdef exchange_done(self, Exchange ex, bint aborted)

@cython.locals(ticks=cython.longlong, bucket=int, last=int)
cdef int _bucket(double seconds)
