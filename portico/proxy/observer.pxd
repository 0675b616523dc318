# Compiled layout of portico/proxy/observer.py: the finished exchange read through typed slots.
cimport cython
from portico.proxy.exchange cimport Exchange
from portico.observe.metrics cimport RouterMetrics

cdef class ExchangeObserver:
    cdef dict __dict__
    cdef public RouterMetrics metrics
    cdef public object access_log

    @cython.locals(status=int, c=int, total=double, bucket=int, waited=double, i=int, gorouter_time=double)
    cpdef exchange_done(self, Exchange ex, bint aborted)
