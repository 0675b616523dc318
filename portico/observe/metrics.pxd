# Compiled layout of portico/observe/metrics.py: the router's counters as C integers, its sums as C doubles.
# Cimports nothing, so the hot path's .pxd files may cimport it (observer.pxd, routing.pxd).

cdef class RouterMetrics:
    cdef dict __dict__   # a counter added to COUNTERS but not here still works (as a Python attribute)
    cdef public long long requests, bad_requests, bad_gateways, unknown_routes, empty_hosts, no_endpoints
    cdef public long long backend_retries, backend_connects, backend_reuses, websocket_upgrades
    cdef public long long registrations, unregistrations, malformed_messages, pruned_endpoints
    cdef public long long nats_reconnects, open_client_connections, malformed_request_bodies
    cdef public long long http2_cutoff_rapid_reset, http2_cutoff_continuation_flood, http2_cutoff_hpack_bomb
    cdef public long long http2_cutoff_settings_flood, http2_cutoff_ping_flood, http2_cutoff_empty_frames
    cdef public long long http2_cutoff_zero_window, http2_cutoff_protocol_error, http2_cutoff_window_update_flood
    cdef public list by_class, duration_buckets, backend_buckets
    cdef public dict router_errors
    cdef public double duration_sum, backend_sum, last_registry_update
    cdef public object route_traffic, failures
