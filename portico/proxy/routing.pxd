# Compiled layout of portico/proxy/routing.py: the router's settings as slots, the exchange it fills typed.
cimport cython
from portico.proxy.exchange cimport Exchange
from portico.observe.metrics cimport RouterMetrics

cdef class RequestRouter:
    cdef dict __dict__
    cdef public object ctx, table, healthcheck_ua, sticky_names, extra_log, forced_proto, keep_named
    cdef public object client_cert_mode, trace_key, special, _host_names
    cdef public dict kinds
    cdef public RouterMetrics metrics
    cdef public bint close_100_continue, negotiate

    @cython.locals(ex=Exchange, kinds=dict, out=list, http11=bint, keep_alive=bint, host_seen=bint,
                   has_request_start=bint, chunked=bint, close_upstream=bint)
    cpdef Exchange route(self, client, parser, bytes url, list headers)
    cpdef Exchange _local(self, Exchange ex, bytes data, int status, str code, str counter=*)
