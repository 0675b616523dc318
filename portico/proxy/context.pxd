# Compiled layout of portico/proxy/context.py: what the hot path reads of a router's context as typed slots.
# Cimports only the metrics' layout (which cimports nothing), so every other .pxd may cimport it.
from portico.observe.metrics cimport RouterMetrics

cdef class ProxyContext:
    cdef dict __dict__
    cdef public RouterMetrics metrics
    cdef public object config, table, state, loop, connector, sticky, response_rules, zipkin, w3c
    cdef public object observe, route_services, admission, router, sticky_cookie_names
    cdef public set connections, tunnels
    cdef public bytes scheme
    cdef public str local_zone
    cdef public bint keep_alive, limit_response_heads, h2c
    cdef public Py_ssize_t max_conns, max_attempts, max_header_bytes, max_header_count, max_uri_bytes
    cdef public Py_ssize_t max_response_headers, max_response_header_bytes
    cdef public double bench_seconds, retry_budget, endpoint_timeout
