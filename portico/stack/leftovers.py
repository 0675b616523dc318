"""Processes an earlier `portico up` left behind, found through its state.json and stopped.

A `portico up` killed with SIGKILL cannot stop its children. They normally die with it (ManagedProcess asks
the kernel for a parent-death signal), but a child that ignores that signal, or one started by an older
Portico, would keep its ports. So every `portico up` records where its state.json is (`up.json` in the user's
state directory) and, before starting, stops the parts listed in the previous one whose `portico up` is gone.
A pid is only signalled when the process still has the start time recorded for it: a reused pid is never hit.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any


def pointer_path() -> Path:
    """$XDG_STATE_HOME/portico/up.json (else ~/.local/state/portico/up.json): the last state.json written."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "portico" / "up.json"


def process_identity(pid: int | None) -> str | None:
    """The process's start time in clock ticks since boot, from /proc (None when there is no such process)."""
    if not pid:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def remember(state_path: Path) -> None:
    """Record `state_path` as the state of the `portico up` now running (this process)."""
    pointer = pointer_path()
    try:
        pointer.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = pointer.with_name(f".up.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"state": str(state_path), "up_pid": os.getpid(),
                                   "up_identity": process_identity(os.getpid())}) + "\n")
        os.replace(tmp, pointer)
    except OSError:
        pass   # cleaning up after a crash is a convenience; never a reason not to start


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _candidates(workdir_state: Path | None) -> list[Path]:
    found = []
    pointer = _read_json(pointer_path())
    if pointer and isinstance(pointer.get("state"), str):
        found.append(Path(pointer["state"]))
    if workdir_state is not None and workdir_state not in found:
        found.append(workdir_state)
    return found


def leftovers(state: dict[str, Any]) -> list[tuple[str, int]]:
    """(part name, pid) of the parts in `state` that still run, when the `portico up` that wrote it is gone."""
    up_pid = state.get("up_pid")
    if isinstance(up_pid, int) and up_pid != os.getpid():
        identity = state.get("up_identity")
        alive = process_identity(up_pid)
        if alive is not None and (identity is None or identity == alive):
            return []          # that portico up still runs: its parts are its own business
    found = []
    for name, part in (state.get("parts") or {}).items():
        if not isinstance(part, dict):
            continue
        pid, identity = part.get("pid"), part.get("identity")
        if isinstance(pid, int) and identity and process_identity(pid) == identity:
            found.append((name, pid))
    return found


def stop_leftovers(workdir_state: Path | None = None, timeout: float = 5.0) -> list[str]:
    """Stop what earlier `portico up` runs left (SIGTERM to each part's process group, SIGKILL after
    `timeout`); a line per part stopped."""
    stopped: list[str] = []
    for path in _candidates(workdir_state):
        state = _read_json(path)
        if state is None:
            continue
        for name, pid in leftovers(state):
            _stop_group(pid, timeout)
            stopped.append(f"{name} (pid {pid}, from {path})")
    return stopped


def _stop_group(pid: int, timeout: float) -> None:
    """Each part leads its own process group (ManagedProcess starts a new session): signal the group."""
    identity = process_identity(pid)
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signum)
            except (ProcessLookupError, PermissionError):
                return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process_identity(pid) != identity:
                return
            time.sleep(0.05)
