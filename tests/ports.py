"""Starting a server again on the port it had: hold the port in between.

Between a server's stop and its new start the port is free, and any process's bind(0) may be handed it; the
new start then fails with "Address already in use". portico.stack.processes.hold_port leaves it in TIME_WAIT,
which no bind(0) takes and the servers (all with SO_REUSEADDR) bind at once.
"""

from __future__ import annotations

from portico.stack.processes import hold_port
from portico.stack.servers import RunningServer


def stop_keeping_port(server: RunningServer) -> None:
    """Stop `server` and hold its port for the start on it that follows."""
    server.stop()
    hold_port(server.port, server.host)
