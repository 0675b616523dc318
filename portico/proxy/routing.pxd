# Compiled layout of portico/proxy/routing.py: the router's settings as slots, the exchange it fills typed, the
# request id and header kind lookups cimported (C calls). The client connection cimports RequestRouter, so a
# request head reaches route() by a C call.
cimport cython
from portico.proxy.exchange cimport Exchange
from portico.proxy.client_base cimport ClientBase
from portico.proxy.context cimport ProxyContext
from portico.observe.metrics cimport RouterMetrics
from portico.proxy.headers cimport request_id, header_kind, connection_tokens
from portico.proxy.host_names cimport HostNames
from portico.proxy.forwarded_lines cimport ForwardedLines
from portico.proxy.head_buffer cimport HeadBuffer

cdef class RequestRouter:
    cdef dict __dict__
    cdef public ProxyContext ctx
    cdef public object table, healthcheck_ua, sticky_names, extra_log, forced_proto, keep_named
    cdef public object client_cert_mode, trace_key
    cdef public dict kinds, special
    cdef public RouterMetrics metrics
    cdef public HostNames hosts
    cdef public ForwardedLines lines
    cdef public HeadBuffer head
    cdef public bint close_100_continue, negotiate

    cpdef Exchange route(self, ClientBase client, parser, bytes url, list headers)
    @cython.locals(ex=Exchange, ctx=ProxyContext, kinds=dict, out=list, http11=bint, keep_alive=bint,
                   presumed=bint, host_seen=bint, has_request_start=bint, chunked=bint, close_upstream=bint,
                   method=bytes, rid=bytes, xff=bytes, xfp=bytes, client_ip=bytes, host=bytes, name=bytes,
                   value=bytes, lname=bytes, expect=bytes, cookie=bytes, app_instance=bytes, upgrade=bytes,
                   content_length=bytes, traceparent=bytes, tracestate=bytes, authorization=bytes,
                   named_hop=tuple, host_name=str, service_url=str, log_values=list, extra_log=tuple,
                   rs_values=dict, rs_raw=list, again=Exchange, pieces=bint, head=HeadBuffer, more=list,
                   piece=bytes)
    cdef Exchange _route(self, ClientBase client, parser, bytes url, list headers, str version, bint as_pieces=*)
    @cython.locals(version=str)
    cdef Exchange _routed_again(self, ClientBase client, parser, bytes url, list headers)
    cpdef Exchange _local(self, Exchange ex, bytes data, int status, str code, str counter=*)

cdef int _field(list out, HeadBuffer head, bytes name, bytes value) except -1
@cython.locals(ex=Exchange)
cpdef Exchange _new_exchange(client, bytes method, bytes url)
