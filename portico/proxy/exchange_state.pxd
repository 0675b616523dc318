# Compiled layout of portico/proxy/exchange_state.py (Cython reads this beside the .py; the .py stays the
# reference): every field the per-request path reads is a typed slot instead of a dict entry. Public, so
# Python code reads and writes them as before.
from portico.proxy.backend_side cimport BackendSide
from portico.proxy.client_base cimport ClientBase
from portico.proxy.context cimport ProxyContext

cdef class ExchangeState:
    cdef public ProxyContext ctx
    cdef public ClientBase client
    cdef public object method, uri, host, pool, head, tail, request_id, pending, endpoint, tried
    cdef public BackendSide upstream
    cdef public object local_response, router_error, last_error, user_agent, referer
    cdef public object x_forwarded_for, x_forwarded_proto, sticky_id, session_cookie, app_instance
    cdef public object route_service, log_values, request_trailers_list, response_trailers_list
    cdef public bint is_head, keep_alive, http11, chunked_request, has_body, body_done, response_started
    cdef public bint upstream_frames_by_close, has_vcap_id_in_response, upgraded, upgrade_request
    cdef public bint app_sets_vcap_id
    cdef public bint negotiate_response, trace_debug, must_be_sticky, finished, body_paused
    cdef public int status, framing, attempts
    cdef public Py_ssize_t pending_size
    cdef public long long request_bytes, response_bytes
    cdef public double started_at, started_wall, sent_at, response_header_at, deadline
