# Compiled layout of portico/proxy/upstream.py: the HTTP/1.1 backend connection and the connector as cdef
# classes with typed fields; the connection's calls to its Exchange are C calls (exchange.pxd).
cimport cython
from portico.observe.metrics cimport RouterMetrics
from portico.proxy.backend_side cimport BackendSide, BackendSource
from portico.proxy.exchange cimport Exchange

cdef class Connector(BackendSource)

cdef class UpstreamConnection(BackendSide):
    cdef public Connector connector
    cdef public str address
    cdef public object pool_key, transport, parser, tunnel, _reason, cf_endpoint
    cdef public bytes cf_block
    cdef public Exchange exchange
    cdef public list _headers
    cdef public Py_ssize_t _head_count, uses
    cdef public bint _stop_after_head, closed, parser_keep_alive, tls, chunked, write_full

    cpdef attach(self, ex)
    cpdef detach(self)
    cpdef bint reused(self) except -1
    cpdef send_request(self, bytes head, bint chunked, list body, bint ended, list trailers=*)
    cpdef send_body(self, chunk)
    cpdef end_body(self, list trailers=*)
    cpdef write(self, data)
    cpdef pause_reading(self)
    cpdef resume_reading(self)
    cpdef release(self)
    cpdef close(self)
    cpdef abort(self)
    cpdef bytes endpoint_headers(self, endpoint)

cdef class Connector(BackendSource):
    cdef public object loop, tls_context_for
    cdef public RouterMetrics metrics
    cdef public dict idle, h2_conns, h2_dialing
    cdef public double dial_timeout, tls_handshake_timeout
    cdef public Py_ssize_t max_idle
    cdef public bint h2c

    cpdef bint speaks_h2(self, endpoint, bint upgrade=*) except -1
    cpdef object pool_key(self, endpoint)
    @cython.locals(protocol=str)
    cpdef BackendSide take_idle_for(self, endpoint, bint upgrade=*)
    @cython.locals(conn=UpstreamConnection)
    cpdef UpstreamConnection take_idle(self, key)
    cpdef release(self, UpstreamConnection conn)
    cpdef forget(self, UpstreamConnection conn)
