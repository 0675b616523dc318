# Compiled layout of portico/proxy/response_head.py: the rules as slots, the exchange typed.
cimport cython
from portico.proxy.exchange cimport Exchange

cdef class ResponseHeadRules:
    cdef dict __dict__
    cdef public object sticky, router_ip, special, removed, add_if_absent
    cdef public bint rewrites
    cdef public dict kinds

    @cython.locals(kinds=dict, out=list, chunked=bint)
    cpdef tuple forwarded(self, Exchange ex, int status, bytes reason, headers, tuple skip)
