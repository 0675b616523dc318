"""Supervising child processes: what each part is, when to restart one, and stopping them in stages.

`portico up` supervises its parts (nats-server, etcd, HAProxy, confsync, routers, demo apps) with `Supervisor`;
`portico router --workers N` restarts its workers with the same `RestartPolicy`. A part knows its kind and
index, so nothing has to be recovered from its name.
"""

from __future__ import annotations

import enum
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from portico.stack.processes import ManagedProcess, wait_for_port


class PartKind(enum.Enum):
    NATS = "nats"
    ETCD = "etcd"
    HAPROXY = "haproxy"
    CONFSYNC = "confsync"
    ROUTER = "router"
    DEMO = "demo"
    REGISTRAR = "registrar"


#: The order `portico up` stops its parts in: what depends on others first; one stage is signalled together.
STOP_STAGES: tuple[tuple[PartKind, ...], ...] = (
    (PartKind.REGISTRAR,), (PartKind.DEMO,), (PartKind.ROUTER,), (PartKind.CONFSYNC,), (PartKind.HAPROXY,),
    (PartKind.ETCD,), (PartKind.NATS,),
)


class StartFailed(RuntimeError):
    """A part did not come up; the message has the reason and the last lines of its log."""


@dataclass(frozen=True)
class RestartPolicy:
    """When a child that exited is started again.

    An exit within `quick` seconds of a restart is a quick failure: the next wait doubles (up to `max_delay`),
    or, with `give_up_when_quick`, supervision stops instead (the child cannot run; retrying only hides it).
    """

    first_delay: float = 1.0
    max_delay: float = 30.0
    quick: float = 10.0
    give_up_when_quick: bool = False

    def next_delay(self, uptime: float, restarts: int, previous: float) -> float | None:
        """Seconds to wait before the next start, or None to give up."""
        if restarts and uptime < self.quick:
            if self.give_up_when_quick:
                return None
            return min(self.max_delay, max(previous, self.first_delay) * 2)
        return self.first_delay


@dataclass
class Part:
    """One supervised child: its process, what it is for, where it listens."""

    name: str
    kind: PartKind
    proc: ManagedProcess
    ports: dict[str, int] = field(default_factory=dict)
    index: int = 0                # routers and demo apps: 1-based number; 0 for the single parts
    critical: bool = False        # the stack cannot work without it: stop everything when it dies (unless,
                                  # under --restart, it is restartable)
    reported_exit: bool = False
    restart_at: float | None = None
    restarts: int = 0
    started_at: float = field(default_factory=time.monotonic)
    delay: float = 0.0            # the last wait before a restart

    @property
    def restartable(self) -> bool:
        """HAProxy cannot be started again under the same master; NATS and etcd can (their data is kept)."""
        return not self.critical or self.kind in (PartKind.NATS, PartKind.ETCD)

    @property
    def pid(self) -> int | None:
        return self.proc.popen.pid if self.proc.popen is not None else None

    @property
    def returncode(self) -> int | None:
        return self.proc.popen.returncode if self.proc.popen is not None else None

    def wait_for_port(self, what: str, timeout: float, label: str = "") -> None:
        """Block until the part listens on its port `what`; StartFailed (with its log's tail) if it does not.

        The one place `portico up` waits for a part to come up: every part fails the same way, with its log.
        """
        try:
            wait_for_port(self.ports[what], timeout=timeout, process=self.proc.popen)
        except (RuntimeError, TimeoutError) as exc:
            raise StartFailed(f"{label or self.name} did not start: {exc}\n{log_tail(self.proc.log_path)}") from None


class Supervisor:
    """Owns the parts: adds them, notices exits, restarts by policy, stops them in stages."""

    def __init__(self, policy: RestartPolicy | None = None, restart: bool = False) -> None:
        self.parts: list[Part] = []
        self.policy = policy or RestartPolicy()
        self.restart = restart
        self.on_change: Callable[[], None] | None = None   # called when a part is added

    def add(self, part: Part) -> Part:
        self.parts.append(part)
        if self.on_change is not None:
            self.on_change()
        return part

    def of_kind(self, kind: PartKind) -> list[Part]:
        return [p for p in self.parts if p.kind is kind]

    def first_exited(self) -> Part | None:
        """A part that is no longer running (for checks while starting), else None."""
        return next((p for p in self.parts if not p.proc.running()), None)

    def due_restarts(self, now: float, before_start: Callable[[Part], None]) -> list[Part]:
        """Start again every part whose restart time has come; `before_start` rewrites what it needs."""
        started = []
        for part in self.parts:
            if part.restart_at is not None and now >= part.restart_at:
                part.restart_at = None
                part.reported_exit = False
                part.restarts += 1
                before_start(part)
                part.proc.start()
                part.started_at = time.monotonic()
                started.append(part)
        return started

    def new_exits(self, now: float) -> list[Part]:
        """Parts that exited since the last call; each is scheduled for restart when restarting is on."""
        exited = []
        for part in self.parts:
            if part.reported_exit or part.restart_at is not None or part.proc.running():
                continue
            part.reported_exit = True
            exited.append(part)
            if self.restart and part.restartable:
                delay = self.policy.next_delay(now - part.started_at, part.restarts, part.delay)
                if delay is not None:
                    part.delay = delay
                    part.restart_at = now + delay
        return exited

    def stop(self, stages: Iterable[tuple[PartKind, ...]] = STOP_STAGES, timeout: float = 5.0) -> None:
        """SIGTERM each stage's parts together, wait for them (SIGKILL after `timeout`), then the next stage."""
        for kinds in stages:
            group = [p for p in self.parts if p.kind in kinds]
            for p in group:
                p.restart_at = None
                try:
                    p.proc.send_signal(signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
            for p in group:
                p.proc.stop(timeout=timeout)


def exit_text(code: int | None) -> str:
    """`code 1`, `code -9, SIGKILL`: how a child ended, for people."""
    if code is None:
        return "unknown code"
    if code < 0:
        try:
            return f"code {code}, {signal.Signals(-code).name}"
        except ValueError:
            return f"code {code}"
    return f"code {code}"


def log_tail(path: Path, lines: int = 8) -> str:
    """The last lines of a log, indented, for an error message ("" when it cannot be read)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])

