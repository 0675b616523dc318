# Compiled layout of portico/proxy/downstream.py: the HTTP/1.1 client connection as a cdef class with typed
# fields; the Exchange's calls to it (ClientBase's cpdef methods) and its calls to the Exchange and the observer
# are C calls, and so is its call to the request router.
cimport cython
from portico.proxy.client_base cimport ClientBase
from portico.proxy.context cimport ProxyContext
from portico.proxy.exchange cimport Exchange
from portico.proxy.head_buffer cimport joined
from portico.proxy.observer cimport ExchangeObserver
from portico.proxy.routing cimport RequestRouter

cdef class ClientConnection(ClientBase):
    # no __dict__: a dict per connection defeats the cached check that a cpdef method is not overridden in
    # Python (each instance dict has its own version), so every cpdef call on the client looked itself up by name
    cdef public ProxyContext ctx
    cdef public object transport, parser, tunnel, queue, _corked
    cdef public bytes _url                       # client_ip, client_addr_bytes, log_protocol: ClientBase's
    cdef public str client_addr                  # client_ip_str: ClientBase's
    cdef public Exchange active, parsing
    cdef public bint closed, sent_anything, reframes_body   # http11: ClientBase's
    cdef public Py_ssize_t read_paused, _head_size, _head_count
    cdef public double last_activity, head_started
    cdef public list _headers

    cpdef write(self, data)
    cpdef send_trailers(self, list headers)
    cpdef cork(self)
    @cython.locals(out=list)
    cpdef uncork(self)
    cpdef bint attached(self, ex) except -1
    cpdef pause_reading(self)
    cpdef resume_reading(self)
    @cython.locals(observe=ExchangeObserver, nxt=Exchange, done=Exchange, keep_alive=bint)
    cpdef exchange_finished(self, ex, bint aborted=*)
    cpdef start_tunnel(self, ex, conn, bytes rest)
    cpdef peer_certificate(self)
    cpdef close(self)
    @cython.locals(ex=Exchange, router=RequestRouter)
    cpdef on_headers_complete(self)
    @cython.locals(ex=Exchange)
    cpdef on_body(self, body)
    @cython.locals(ex=Exchange)
    cpdef on_message_complete(self)
