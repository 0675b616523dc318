"""Router counters: plain integer attributes, cheap to bump on the hot path, read by /varz and /metrics."""

from __future__ import annotations


class RouterMetrics:
    """What a router has done since it started. Writers only do `metrics.x += 1`; readers render."""

    __slots__ = (
        "requests", "responses_2xx", "responses_3xx", "responses_4xx", "responses_5xx", "responses_xxx",
        "bad_requests", "bad_gateways", "unknown_routes", "empty_hosts", "no_endpoints", "backend_retries",
        "backend_connects", "backend_reuses", "websocket_upgrades", "registrations", "unregistrations",
        "malformed_messages", "pruned_endpoints", "nats_reconnects", "open_client_connections",
        "malformed_request_bodies",
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def count_status(self, status: int) -> None:
        if 200 <= status < 300:
            self.responses_2xx += 1
        elif 300 <= status < 400:
            self.responses_3xx += 1
        elif 400 <= status < 500:
            self.responses_4xx += 1
        elif 500 <= status < 600:
            self.responses_5xx += 1
        else:
            self.responses_xxx += 1

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}
