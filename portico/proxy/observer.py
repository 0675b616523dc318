# cython: annotation_typing=False
"""What happens when an exchange ends: counters, and one access log line (buffered, off the hot path)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

from portico.observe.metrics import LAST_BUCKET
from portico.observe.route_traffic import count_request

try:
    import cython
except ImportError:   # no Cython installed: certainly the pure module
    cython = SimpleNamespace(compiled=False)

if not cython.compiled:
    # Compiled, Cython drops this branch (cython.compiled is a constant there) and observer.pxd cimports
    # cpython.time's monotonic: the clock read as a C double, no float object and no Python call.
    from time import monotonic

    from portico.routes.guids import id_text

if TYPE_CHECKING:
    from portico.observe.access_log import AccessLog
    from portico.observe.metrics import RouterMetrics
    from portico.proxy.exchange import Exchange

_HTTP11 = b"HTTP/1.1"
_HTTP10 = b"HTTP/1.0"


class ExchangeObserver:
    def __init__(self, metrics: RouterMetrics, access_log: AccessLog | None = None) -> None:
        self.metrics = metrics
        self.access_log = access_log
        # the last logged endpoint's ids as text: an endpoint keeps them packed (portico.routes.guids), and a
        # run of requests to one endpoint (a kept connection, a small table) reads them back once, not each time
        self._ids_of: object = None
        self._app_id: str | bytes = ""
        self._instance_id: str | bytes = ""

    def exchange_done(self, ex: Exchange, aborted: bool) -> None:
        # Counting is a handful of integer adds: a class, a latency bucket (metrics.bucket_index), a route's row.
        metrics = self.metrics
        status = ex.status
        c = status // 100
        metrics.by_class[c if 0 < c < 6 else 6] += 1
        total = monotonic() - ex.started_at
        if cython.compiled:
            bucket = _bucket(total)
        else:   # interpreted, the expression inline is cheaper than a call (Cython drops this branch)
            bucket = int(total * 10000.0).bit_length()
            if bucket > LAST_BUCKET:
                bucket = LAST_BUCKET
        metrics.duration_buckets[bucket] += 1
        metrics.duration_sum += total
        waited = (ex.response_header_at - ex.sent_at) if ex.response_header_at and ex.sent_at else 0.0
        if waited:
            metrics.backend_buckets[_bucket(waited)] += 1
            metrics.backend_sum += waited
        ep = ex.endpoint
        pool = ex.pool
        if ex.router_error:
            metrics.count_router_error(ex.router_error, pool, ep)
        if pool is not None:
            # the route's counters, written in place on its pool (portico.observe.route_traffic): compiled, one
            # C call and a few C adds; microseconds as a literal (route_traffic.MICROSECONDS), a C double
            micros = int(total * 1000000.0)
            count_request(metrics.route_traffic, pool, bucket, micros, status >= 500)
        log = self.access_log
        if log is None:
            return
        if ep is not None:
            # The endpoint's strings go to the log as they are: compiled, an ASCII str is copied from its own
            # storage (no encode, and nothing kept per endpoint); pure Python encodes them in write_line.
            backend = ep.address
            if ep is not self._ids_of:
                ids = ep.guids
                self._app_id = id_text(ids, False)
                self._instance_id = id_text(ids, True)
                self._ids_of = ep
            app_id = self._app_id
            app_index = ep.private_instance_index
            instance_id = self._instance_id
            # Time in the router: all of it but the wait for the backend's response head.
            gorouter_time = total - waited
        else:
            backend = app_id = app_index = instance_id = ""
            gorouter_time = total
        client = ex.client
        uri = ex.uri
        if uri and uri[0] != 47 and b"@" in uri:   # not `/...`: maybe `GET http://user:password@host/`
            uri = _without_userinfo(uri)  # never log the credentials
        proto = client.log_protocol or (_HTTP11 if ex.http11 else _HTTP10)   # HTTP/2 streams say HTTP/2.0
        log.write_line(ex.started_wall, status, ex.request_bytes, ex.response_bytes, total, gorouter_time,
                       ex.host, ex.method, uri, proto, ex.referer, ex.user_agent, client.client_addr_bytes, backend,
                       ex.x_forwarded_for, ex.x_forwarded_proto, ex.request_id, app_id, app_index, instance_id,
                       ex.router_error, ex.log_values)


def _bucket(seconds: float) -> int:
    """The latency bucket of `seconds` (metrics.bucket_index: bit length of its 0.1 ms ticks, capped)."""
    ticks = int(seconds * 10000.0)
    last = LAST_BUCKET
    if not cython.compiled:
        bucket = ticks.bit_length()
        return bucket if bucket < last else last
    if ticks < 0:
        ticks = -ticks
    bucket = 0
    while ticks > 0 and bucket < last:   # compiled: a C loop, no Python int
        ticks >>= 1
        bucket += 1
    return bucket


def _without_userinfo(uri: bytes) -> bytes:
    """An absolute-form target with its `user:password@` masked."""
    scheme, sep, rest = uri.partition(b"://")
    if not sep:
        return uri
    authority, slash, path = rest.partition(b"/")
    if b"@" not in authority:
        return uri
    return scheme + b"://***@" + authority.rpartition(b"@")[2] + slash + path
