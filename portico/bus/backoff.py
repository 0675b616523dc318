"""How long a NATS reader waits before its next connection attempt: short first, doubling, capped, jittered.

A registration published while the router is disconnected is lost until the app re-registers (~20 s later),
so the router must be back and subscribed soon after nats-server accepts connections again: the cap bounds
that gap (a 0.25 s cap keeps it under 0.5 s with the connect and subscribe round trips). A refused connect on
the local network costs next to nothing, so a few attempts a second while NATS is down are cheap. The jitter
keeps a fleet of routers from reconnecting in lockstep.
"""

from __future__ import annotations

import random

FIRST_WAIT = 0.02     # seconds before the first attempt after a loss
MAX_WAIT = 0.25       # the cap


def reconnect_delay(attempt: int, first: float = FIRST_WAIT, cap: float = MAX_WAIT) -> float:
    """The wait before attempt number `attempt` (0 = the first after the connection was lost)."""
    base = min(cap, first * (2 ** min(max(attempt, 0), 20)))
    return base * random.uniform(0.5, 1.0)
