# Compiled layout of portico/proxy/routing.py: the router's settings as slots, the exchange it fills typed, the
# request id and header kind lookups cimported (C calls). The client connection cimports RequestRouter, so a
# request head reaches route() by a C call.
cimport cython
from portico.proxy.exchange cimport Exchange
from portico.proxy.context cimport ProxyContext
from portico.observe.metrics cimport RouterMetrics
from portico.proxy.headers cimport request_id, header_kind, connection_tokens

cdef class RequestRouter:
    cdef dict __dict__
    cdef public ProxyContext ctx
    cdef public object table, healthcheck_ua, sticky_names, extra_log, forced_proto, keep_named
    cdef public object client_cert_mode, trace_key
    cdef public dict kinds, special, _host_names, _proto_lines
    cdef public RouterMetrics metrics
    cdef public bint close_100_continue, negotiate
    cdef long long _start_ms, _start_second
    cdef bytes _start_line, _second_prefix

    cpdef Exchange route(self, client, parser, bytes url, list headers)
    @cython.locals(ex=Exchange, ctx=ProxyContext, kinds=dict, out=list, http11=bint, keep_alive=bint,
                   presumed=bint, host_seen=bint, has_request_start=bint, chunked=bint, close_upstream=bint,
                   method=bytes, rid=bytes, xff=bytes, xfp=bytes, client_ip=bytes, host=bytes, name=bytes,
                   value=bytes, lname=bytes, expect=bytes, cookie=bytes, app_instance=bytes, upgrade=bytes,
                   content_length=bytes, traceparent=bytes, tracestate=bytes, authorization=bytes,
                   named_hop=tuple, host_name=str, service_url=str, log_values=list, extra_log=tuple,
                   rs_values=dict, rs_raw=list, proto_line=bytes)
    cdef Exchange _route(self, client, parser, bytes url, list headers, str version)
    cdef bytes _proto_line(self, bytes xfp)
    @cython.locals(ms="long long", second="long long")
    cdef bytes _request_start(self, double wall)
    cpdef Exchange _local(self, Exchange ex, bytes data, int status, str code, str counter=*)

@cython.locals(ex=Exchange)
cpdef Exchange _new_exchange(client, bytes method, bytes url)
