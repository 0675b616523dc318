"""The files `portico up` writes: each router's gorouter.yml, the demo registrar's config, and state.json.

Both are written as JSON, which is valid YAML and needs no YAML writer; they are plain files in the work
directory so an operator can read (and copy) what each part was started with.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portico.config.values import parse_nats_url
from portico.stack.leftovers import process_identity, remember
from portico.stack.plan import PortPlan, RouterPorts, split_urls
from portico.stack.supervisor import Part

DEMO_HOST = "demo.portico.local"
ADMIN_USER = "admin"
ADMIN_PASS = "admin"


def nats_hosts(urls: str) -> list[dict[str, Any]]:
    """gorouter's `nats.hosts` entries for comma-separated NATS URLs (credentials per host when given)."""
    hosts = []
    for url in split_urls(urls):
        server = parse_nats_url(url, "--nats")
        entry: dict[str, Any] = {"hostname": server.hostname, "port": server.port}
        if server.user:
            entry["user"] = server.user
            entry["pass"] = server.password
        hosts.append(entry)
    return hosts


@dataclass(frozen=True)
class RouterSetup:
    """What every router of the stack shares: the buses it uses and how it announces itself."""

    nats_url: str
    etcd_urls: list[str]
    etcd_prefix: str
    lease_ttl: float


def write_router_config(path: Path, index: int, ports: RouterPorts, setup: RouterSetup) -> Path:
    """router-N's gorouter.yml; its access log goes next to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "index": index,
        "status": {"host": "127.0.0.1", "port": ports.status, "user": ADMIN_USER, "pass": ADMIN_PASS,
                   "routes": {"port": ports.routes}},
        "nats": {"hosts": nats_hosts(setup.nats_url)},
        "port": ports.proxy,
        "listen_host": "127.0.0.1",
        "enable_proxy": True,     # HAProxy sends each client's address in a PROXY protocol header
        "start_response_delay_interval": "1s",
        "suspend_pruning_if_nats_unavailable": True,
        "droplet_stale_threshold": "120s",
        "prune_stale_droplets_interval": "30s",
        "etcd": {"endpoints": setup.etcd_urls, "prefix": setup.etcd_prefix,
                 "lease_ttl": f"{setup.lease_ttl:g}s", "advertise_host": "127.0.0.1"},
        "access_log": {"file": str(path.parent / "access.log")},
        # a router restarted by --restart comes back with its routes (docs/route-snapshot.md)
        "route_snapshot": {"file": str(path.parent / "routes-snapshot.json")},
    }
    path.write_text(f"# router-{index}, written by portico up\n" + json.dumps(config, indent=2) + "\n")
    return path


def demo_route(index: int, port: int) -> dict[str, Any]:
    """The registrar's route for demo app `index` (1-based), health-checked over HTTP."""
    name = f"demo-{index}"
    return {
        "name": name, "port": port, "uris": [DEMO_HOST], "registration_interval": "5s",
        "private_instance_id": name, "private_instance_index": str(index - 1),
        "health_check": {"name": f"{name}-up", "http_url": f"http://127.0.0.1:{port}/health", "timeout": "2s"},
    }


def write_registrar_config(path: Path, nats_url: str, routes: list[dict[str, Any]]) -> Path:
    registrar_cfg = {"nats": split_urls(nats_url), "host": "127.0.0.1", "routes": routes}
    path.write_text("# demo routes, kept registered by `portico registrar`\n"
                    + json.dumps(registrar_cfg, indent=2) + "\n")
    return path


def write_state_file(workdir: Path, plan: PortPlan, nats_url: str, etcd_urls: list[str], etcd_prefix: str,
                     parts: Sequence[Part], router_configs: list[Path]) -> None:
    """state.json in the work directory, replaced atomically: every part's pid, ports and log file."""
    state = {
        "up_pid": os.getpid(),
        "up_identity": process_identity(os.getpid()),
        "workdir": str(workdir),
        "front": f"http://127.0.0.1:{plan.front}",
        "front_port": plan.front,
        "nats": nats_url,
        "etcd": etcd_urls,
        "etcd_prefix": etcd_prefix,
        "haproxy_stats": f"http://127.0.0.1:{plan.haproxy_stats}/",
        "confsync_status": f"http://127.0.0.1:{plan.confsync_status}/status",
        "dashboard": f"http://127.0.0.1:{plan.dashboard}/",
        "parts": {
            p.name: {"kind": p.kind.value, "pid": p.pid, "identity": process_identity(p.pid),
                     "running": p.proc.running(), "ports": p.ports, "log": str(p.proc.log_path),
                     "restarts": p.restarts}
            for p in parts
        },
        "routers": {f"router-{i}": str(path) for i, path in enumerate(router_configs, 1)},
    }
    path = workdir / "state.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)
    remember(path)   # so a later portico up can stop what this one leaves behind if it is killed
