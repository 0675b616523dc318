"""What HAProxy's running worker thinks of its servers, read through the master CLI (next to haproxy_ctl).

`portico up` watches the routers' backend with this: which servers exist, at which address, and whether the
health check has them UP. `show servers state` is used rather than the stats CSV because it has the addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

from portico.confsync.shipped.haproxy_ctl import master_command

ROUTERS_BACKEND = "portico_routers"

_OP_STATES = {"0": "DOWN", "1": "STARTING", "2": "UP", "3": "STOPPING"}


@dataclass(frozen=True)
class ServerState:
    address: str   # host:port
    status: str    # UP, DOWN, STARTING, STOPPING, MAINT or ?


def servers_state(sock_path: str, backend: str = ROUTERS_BACKEND,
                  timeout: float = 1.0) -> dict[str, ServerState] | None:
    """server name -> state for `backend`, asked from the current worker; None when HAProxy does not answer."""
    try:
        text = master_command(sock_path, f"@1 show servers state {backend}", timeout)
    except OSError:
        return None
    return parse_servers_state(text, backend)


def parse_servers_state(text: str, backend: str = ROUTERS_BACKEND) -> dict[str, ServerState] | None:
    """`show servers state` output -> server name -> state; None when it has no header (not an answer)."""
    columns: list[str] = []
    servers = {}
    for line in text.splitlines():
        if line.startswith("# be_id"):
            columns = line[2:].split()
            continue
        fields = line.split()
        if not columns or len(fields) < len(columns) or fields[1] != backend:
            continue
        row = dict(zip(columns, fields, strict=False))
        status = _OP_STATES.get(row["srv_op_state"], "?")
        if row.get("srv_admin_state", "0") not in ("0", ""):
            status = "MAINT"
        servers[row["srv_name"]] = ServerState(f"{row['srv_addr']}:{row['srv_port']}", status)
    if not columns:
        return None
    return servers


@dataclass(frozen=True)
class ServerChange:
    """One difference between two views: a server `joined`, `left`, or changed `status`."""

    name: str
    address: str
    what: str        # joined, left, status
    status: str      # the new status ("" for left)


def changes(before: dict[str, ServerState], after: dict[str, ServerState]) -> list[ServerChange]:
    out = []
    for name, state in after.items():
        old = before.get(name)
        if old is None:
            out.append(ServerChange(name, state.address, "joined", state.status))
        elif old.status != state.status:
            out.append(ServerChange(name, state.address, "status", state.status))
    out += [ServerChange(name, state.address, "left", "") for name, state in before.items() if name not in after]
    return out
