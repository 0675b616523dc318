"""What happens when an exchange ends: counters, and one access log line (buffered, off the hot path)."""

from __future__ import annotations


class ExchangeObserver:
    def __init__(self, metrics, access_log=None) -> None:
        self.metrics = metrics
        self.access_log = access_log

    def exchange_done(self, ex, aborted: bool) -> None:
        self.metrics.count_status(ex.status)
        log = self.access_log
        if log is None:
            return
        loop_now = ex.ctx.loop.time()
        ep = ex.endpoint
        total = loop_now - ex.started_at
        backend_time = (loop_now - ex.response_header_at) if ex.response_header_at else 0.0
        log.record(
            host=ex.host.decode("latin-1"), start_time=ex.started_wall, method=ex.method.decode("latin-1"),
            uri=ex.uri.decode("latin-1"), proto="HTTP/1.1" if ex.client.http11 else "HTTP/1.0",
            status=ex.status, request_bytes=ex.request_bytes, response_bytes=ex.response_bytes,
            referer=ex.referer.decode("latin-1"), user_agent=ex.user_agent.decode("latin-1"),
            client_addr=ex.client.client_addr, backend_addr=ep.address if ep is not None else "",
            x_forwarded_for=ex.x_forwarded_for.decode("latin-1"),
            x_forwarded_proto=ex.x_forwarded_proto.decode("latin-1"),
            vcap_request_id=ex.request_id.decode("latin-1"), response_time=total,
            gorouter_time=max(total - backend_time, 0.0) if ep is not None else total,
            app_id=ep.app_id if ep is not None else "",
            app_index=ep.private_instance_index if ep is not None else "",
            instance_id=ep.private_instance_id if ep is not None else "",
            router_error=ex.router_error,
            extra_values=tuple(v.decode("latin-1") for v in ex.log_values),
        )
