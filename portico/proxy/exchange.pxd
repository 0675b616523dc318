# Compiled layout of portico/proxy/exchange.py: the fields are ExchangeState's typed slots, and nothing else (no
# `__dict__`: Cython would make a dict per exchange, and its fresh version defeats the cached check that a
# cpdef method is not overridden, costing an attribute lookup on every call). A new field goes in
# exchange_state.py and .pxd. The methods the connections call (and the exchange's own steps) are cpdef: C calls
# from the compiled client and backend connections, ordinary methods to Python.
cimport cython
from cpython.time cimport monotonic
from portico.proxy.exchange_state cimport ExchangeState
from portico.proxy.backend_side cimport BackendSide, BackendSource
from portico.proxy.flow cimport Flow
from portico.proxy.response_head cimport ResponseHeadRules
from portico.proxy.head_buffer cimport joined3

cdef class Exchange(ExchangeState):
    cpdef start(self)
    @cython.locals(connector=BackendSource, conn=BackendSide, now=double)
    cpdef attempt(self)
    @cython.locals(flow=Flow)
    cpdef _attach(self, BackendSide conn)
    @cython.locals(flow=Flow)
    cpdef request_body(self, chunk)
    @cython.locals(flow=Flow)
    cpdef _unpause_body(self)
    cpdef request_trailers(self, list headers)
    cpdef request_done(self)
    @cython.locals(rules=ResponseHeadRules)
    cpdef response_head(self, BackendSide conn, int status, bytes reason, list headers)
    cpdef response_body(self, chunk)
    cpdef response_trailers(self, list headers)
    cpdef response_done(self, BackendSide conn, bint reusable)
    cpdef response_upgraded(self, BackendSide conn, bytes rest)
    @cython.locals(flow=Flow)
    cpdef _release_upstream(self, BackendSide conn, bint reusable)
    @cython.locals(active=Py_ssize_t)
    cpdef _release_endpoint(self)
    @cython.locals(flow=Flow)
    cpdef upstream_lost(self, BackendSide conn, exc, bint malformed=*)
    @cython.locals(flow=Flow)
    cpdef abandon_upstream(self)
    cpdef finish(self, bint aborted=*)
