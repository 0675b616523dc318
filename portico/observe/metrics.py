"""Router counters: plain integer attributes, cheap to bump on the hot path, read by /varz and /metrics."""

from __future__ import annotations


class RouterMetrics:
    """What a router has done since it started. Writers only do `metrics.x += 1`; readers render."""

    __slots__ = (
        "backend_connects",
        "backend_retries",
        "backend_reuses",
        "bad_gateways",
        "bad_requests",
        "empty_hosts",
        "malformed_messages",
        "nats_reconnects",
        "no_endpoints",
        "open_client_connections",
        "pruned_endpoints",
        "registrations",
        "requests",
        "responses_2xx",
        "responses_3xx",
        "responses_4xx",
        "responses_5xx",
        "responses_xxx",
        "unknown_routes",
        "unregistrations",
        "websocket_upgrades",
    )
    backend_connects: int
    backend_retries: int
    backend_reuses: int
    bad_gateways: int
    bad_requests: int
    empty_hosts: int
    malformed_messages: int
    nats_reconnects: int
    no_endpoints: int
    open_client_connections: int
    pruned_endpoints: int
    registrations: int
    requests: int
    responses_2xx: int
    responses_3xx: int
    responses_4xx: int
    responses_5xx: int
    responses_xxx: int
    unknown_routes: int
    unregistrations: int
    websocket_upgrades: int

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
