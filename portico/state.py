"""A router's lifecycle, shared by the proxy, the status server and the bus: starting, healthy, draining."""

from __future__ import annotations

import time
import uuid

from portico.observe.metrics import RouterMetrics

STARTING = "starting"
HEALTHY = "healthy"
DRAINING = "draining"


class RouterState:
    """Whether this router should be sent traffic, plus its identity and counters."""

    def __init__(self, index: int = 0) -> None:
        self.phase = STARTING
        self.id = f"{index}-{uuid.uuid4()}"
        self.started_at = time.time()
        self.metrics = RouterMetrics()
        self.nats_connected = False

    @property
    def healthy(self) -> bool:
        return self.phase == HEALTHY

    def mark_healthy(self) -> None:
        if self.phase == STARTING:
            self.phase = HEALTHY

    def mark_draining(self) -> None:
        self.phase = DRAINING
