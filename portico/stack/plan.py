"""`portico up`'s options and its port plan: which port each part listens on, checked before anything starts.

Fixed ports by default (the summary and docs/walkthrough.md show them); `--base-port` moves every port except
NATS, etcd and the front; `--ports auto` takes free ports for everything not given explicitly.
"""

from __future__ import annotations

import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from portico.config.values import ConfigError, parse_nats_url
from portico.stack.processes import free_port

DEFAULT_FRONT_PORT = 8080
DEFAULT_NATS_PORT = 4222
DEFAULT_ETCD_PORT = 2379
DEFAULT_ETCD_PEER_PORT = 2380
DEFAULT_BASE_PORT = 8100       # router i (1-based): proxy base+10(i-1), status +1, routes +2
                               # confsync status base-1, HAProxy stats base-2, demo-i base+900+i


class UpError(RuntimeError):
    """A part could not start; the message is the reason shown to the user."""


@dataclass
class UpOptions:
    routers: int = 2
    front_port: int | None = None        # None: 8080 (fixed ports) or a free one (auto)
    nats_url: str | None = None          # existing NATS instead of an embedded one
    etcd_url: str | None = None          # existing etcd instead of an embedded one
    demo: bool = False
    workdir: Path | None = None
    base_port: int = DEFAULT_BASE_PORT
    auto_ports: bool = False
    restart: bool = False
    prefix: str = "/portico"
    lease_ttl: float = 5.0
    ready_timeout: float = 30.0


@dataclass
class RouterPorts:
    proxy: int
    status: int
    routes: int


@dataclass
class PortPlan:
    front: int
    nats: int | None
    etcd: int | None
    etcd_peer: int | None
    confsync_status: int
    haproxy_stats: int
    routers: list[RouterPorts]
    demo: list[int]
    dashboard: int = 0            # the stack's page (portico.stack.dashboard)

    def router_index(self, addr: str) -> int | None:
        """Which of our routers (1-based) listens on addr; None for a router of someone else's on a shared etcd."""
        for i, ports in enumerate(self.routers, 1):
            if addr == f"127.0.0.1:{ports.proxy}":
                return i
        return None

    def owned(self) -> list[tuple[str, int]]:
        """(what, port) for every port this stack will listen on."""
        out = [("HAProxy front", self.front)]
        if self.nats:
            out.append(("nats-server", self.nats))
        if self.etcd and self.etcd_peer:
            out += [("etcd client", self.etcd), ("etcd peer", self.etcd_peer)]
        out += [("confsync status", self.confsync_status), ("HAProxy stats", self.haproxy_stats),
                ("stack dashboard", self.dashboard)]
        for i, r in enumerate(self.routers, 1):
            out += [(f"router-{i} proxy", r.proxy), (f"router-{i} status", r.status),
                    (f"router-{i} routes", r.routes)]
        out += [(f"demo-{i}", p) for i, p in enumerate(self.demo, 1)]
        return out


def plan_ports(opts: UpOptions) -> PortPlan:
    n = opts.routers
    if opts.auto_ports:
        taken: set[int] = set()

        def pick() -> int:
            while True:
                port = free_port()
                if port not in taken:
                    taken.add(port)
                    return port

        front = opts.front_port or pick()
        taken.add(front)
        return PortPlan(
            front=front,
            nats=None if opts.nats_url else pick(),
            etcd=None if opts.etcd_url else pick(),
            etcd_peer=None if opts.etcd_url else pick(),
            confsync_status=pick(), haproxy_stats=pick(),
            routers=[RouterPorts(pick(), pick(), pick()) for _ in range(n)],
            demo=[pick() for _ in range(2)] if opts.demo else [],
            dashboard=pick(),
        )
    b = opts.base_port
    return PortPlan(
        front=opts.front_port or DEFAULT_FRONT_PORT,
        nats=None if opts.nats_url else DEFAULT_NATS_PORT,
        etcd=None if opts.etcd_url else DEFAULT_ETCD_PORT,
        etcd_peer=None if opts.etcd_url else DEFAULT_ETCD_PEER_PORT,
        confsync_status=b - 1, haproxy_stats=b - 2,
        routers=[RouterPorts(b + 10 * i, b + 10 * i + 1, b + 10 * i + 2) for i in range(n)],
        demo=[b + 900 + i for i in range(1, 3)] if opts.demo else [],
        dashboard=b - 3,
    )


def port_problem(port: int, host: str = "127.0.0.1") -> str | None:
    """None when we can listen on host:port, else why not."""
    if not 0 < port < 65536:
        return f"port {port} is not a valid port"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except PermissionError:
            return (f"port {port} needs privileges (run as root, give haproxy CAP_NET_BIND_SERVICE, "
                    f"or lower net.ipv4.ip_unprivileged_port_start)")
        except OSError as exc:
            return f"port {port} is already in use ({exc.strerror})"
    return None


def check_ports(plan: PortPlan) -> None:
    seen: dict[int, str] = {}
    problems = []
    for what, port in plan.owned():
        if port in seen:
            problems.append(f"{what} and {seen[port]} would both use port {port}")
            continue
        seen[port] = what
        problem = port_problem(port)
        if problem:
            problems.append(f"{what}: {problem}")
    if problems:
        hint = ("choose other ports with --front-port / --base-port, or --ports auto for free ones; "
                "--nats URL / --etcd URL use servers that already run")
        if len(problems) >= len(seen) - 1 and len(problems) > 2:
            hint = "is another `portico up` running? " + hint
        raise UpError("cannot start:\n" + "\n".join(f"  - {p}" for p in problems) + f"\n  hint: {hint}")


def split_urls(value: str) -> list[str]:
    """The URLs of a comma-separated --nats / --etcd value."""
    return [u.strip() for u in value.split(",") if u.strip()]


def etcd_endpoints(urls: str) -> list[str]:
    return [u if "://" in u else f"http://{u}" for u in split_urls(urls)]


def check_existing_nats(urls: str) -> None:
    """--nats: the URLs parse and at least one server answers, else UpError."""
    try:
        servers = [parse_nats_url(u, "--nats") for u in split_urls(urls)]
    except ConfigError as exc:
        raise UpError(str(exc)) from None
    if not any(reachable(s.hostname, s.port) for s in servers):
        raise UpError(f"cannot reach NATS at {urls}")


def check_existing_etcd(urls: str) -> list[str]:
    """--etcd: the endpoints, when at least one answers, else UpError."""
    endpoints = etcd_endpoints(urls)
    for url in endpoints:
        parts = urllib.parse.urlsplit(url)
        if reachable(parts.hostname or "127.0.0.1", parts.port or 2379):
            return endpoints
    raise UpError(f"cannot reach etcd at {urls}")


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
