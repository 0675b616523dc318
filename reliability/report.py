"""RELIABILITY.md: the machine, the versions, and each scenario's figures against its goal.

The results also go into the file as a JSON comment, so that a later `--only` run can replace the scenarios it
ran and keep the others (each keeps the date of the run that measured it).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from reliability.core import Outcome, Result, Scenario

_DATA_START = "<!-- reliability-results"
_DATA_END = "-->"


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "os": platform.platform(),
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": mem,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def versions() -> dict[str, str]:
    from portico.stack.binaries import etcd_binary, haproxy_binary, nats_server_binary

    found: dict[str, str] = {"python": sys.version.split()[0]}
    for dist in ("portico", "uvloop", "httptools", "nats-py", "aetcd"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    for name, locate, flag in (("nats-server", nats_server_binary, "--version"),
                               ("etcd", etcd_binary, "--version"), ("haproxy", haproxy_binary, "-v")):
        try:
            found[name] = _first_line([locate(), flag])
        except Exception as exc:  # a missing binary is reported, not fatal
            found[name] = f"not found ({exc})"
    return found


def load_previous(path: Path) -> dict[str, dict[str, Any]]:
    """Outcomes stored in an earlier RELIABILITY.md, by scenario name ({} when none)."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    match = re.search(re.escape(_DATA_START) + r"\n(.*?)\n" + re.escape(_DATA_END), text, re.S)
    if not match:
        return {}
    try:
        return {o["name"]: o for o in json.loads(match.group(1))}
    except (ValueError, KeyError, TypeError):
        return {}


def outcome_from_dict(data: dict[str, Any]) -> Outcome:
    result = data.get("result")
    return Outcome(
        name=data["name"], goal=data["goal"], quick=data["quick"], seconds=data["seconds"],
        started=data["started"], error=data.get("error"), extra=data.get("extra", {}),
        result=Result(**result) if result else None,
    )


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _verdict(outcome: Outcome | None) -> str:
    if outcome is None:
        return "not run in this session"
    if outcome.error:
        return "**error**"
    return "met" if outcome.met else "**not met**"


def render(scenarios: list[Scenario], outcomes: dict[str, Outcome], header: dict[str, dict[str, str]],
           note: str = "") -> str:
    lines = ["# Reliability figures", "",
             "Written by `reliability/run` (see [docs/reliability.md](docs/reliability.md)). Every figure below",
             "was measured by that command against real processes (nats-server, etcd, HAProxy, Portico routers)",
             "on 127.0.0.1; nothing is copied in by hand.", ""]
    if note:
        lines += [note, ""]
    for title, table in header.items():
        lines += [f"## {title}", "", "| | |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in table.items()]
        lines.append("")
    lines += ["## Summary", "", "| scenario | goal | verdict | run | seconds |", "| --- | --- | --- | --- | --- |"]
    for sc in scenarios:
        o = outcomes.get(sc.name)
        when = "" if o is None else f"{o.started}{' (quick)' if o.quick else ''}"
        secs = "" if o is None else f"{o.seconds:.0f}"
        lines.append(f"| [{sc.name}](#{sc.name}) | {sc.goal} | {_verdict(o)} | {when} | {secs} |")
    lines.append("")
    for sc in scenarios:
        o = outcomes.get(sc.name)
        lines += [f"## {sc.name}", "", f"Goal: {sc.goal}", "", f"Verdict: {_verdict(o)}", ""]
        if o is None:
            continue
        if o.error:
            lines += ["```", o.error.strip(), "```", ""]
        if o.result is not None:
            lines += ["| figure | value |", "| --- | --- |"]
            lines += [f"| {k} | {_figure(v)} |" for k, v in o.result.figures.items()]
            lines.append("")
            if o.result.notes:
                lines += [o.result.notes, ""]
    data = json.dumps([asdict(o) for o in outcomes.values()], indent=1, default=str)
    lines += [_DATA_START, data, _DATA_END, ""]
    return "\n".join(lines)
