"""What happens when an exchange ends: counters, and one access log line (buffered, off the hot path)."""

from __future__ import annotations

from time import monotonic

_NO_ENDPOINT = (b"", b"", b"", b"")
_HTTP11 = b"HTTP/1.1"
_HTTP10 = b"HTTP/1.0"


class ExchangeObserver:
    def __init__(self, metrics, access_log=None) -> None:
        self.metrics = metrics
        self.access_log = access_log

    def exchange_done(self, ex, aborted: bool) -> None:
        self.metrics.count_status(ex.status)
        log = self.access_log
        if log is None:
            return
        total = monotonic() - ex.started_at
        ep = ex.endpoint
        if ep is not None:
            # Encoded per request rather than cached per endpoint: ~0.3 us here saves ~250 bytes per route.
            backend = ep.address_bytes
            app_id = ep.app_id.encode()
            app_index = ep.private_instance_index.encode()
            instance_id = ep.private_instance_id.encode()
            # Time in the router: all of it but the wait for the backend's response head.
            waited = (ex.response_header_at - ex.sent_at) if ex.response_header_at and ex.sent_at else 0.0
            gorouter_time = total - waited
        else:
            backend = app_id = app_index = instance_id = b""
            gorouter_time = total
        client = ex.client
        fields = (ex.host, ex.method, ex.uri, _HTTP11 if ex.http11 else _HTTP10, ex.referer, ex.user_agent,
                  client.client_addr_bytes, backend, ex.x_forwarded_for, ex.x_forwarded_proto, ex.request_id,
                  app_id, app_index, instance_id, ex.router_error.encode() if ex.router_error else b"")
        if ex.log_values:
            fields += ex.log_values
        log.log(ex.started_wall, ex.status, ex.request_bytes, ex.response_bytes, total, gorouter_time, fields)
