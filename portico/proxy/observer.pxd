# Compiled layout of portico/proxy/observer.py: the finished exchange read through typed slots.
cimport cython
from portico.proxy.exchange cimport Exchange

cdef class ExchangeObserver:
    cdef dict __dict__
    cdef public object metrics, access_log

    @cython.locals(status=int, c=int, total=double, bucket=int, waited=double, i=int, gorouter_time=double)
    cpdef exchange_done(self, Exchange ex, bint aborted)
