"""What `portico up` prints: timestamped event lines, the summary table, and the confsync log lines that matter."""

from __future__ import annotations

import re
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from portico.confsync.shipped.haproxy_view import ServerChange
from portico.stack.configs import ADMIN_PASS, ADMIN_USER, DEMO_HOST
from portico.stack.plan import PortPlan, UpOptions
from portico.stack.supervisor import Part, PartKind, exit_text, log_tail


class StackConsole:
    """The terminal of `portico up`: one readable line per event, flushed at once."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)

    def say(self, message: str, style: str = "") -> None:
        line = Text(time.strftime("%H:%M:%S "), style="dim")
        line.append(message, style=style)
        self.console.print(line)
        try:
            self.console.file.flush()
        except (AttributeError, ValueError, OSError):
            pass

    def error(self, message: str) -> None:
        self.console.print(Text(message, style="bold red"))

    def table(self, title: str, columns: tuple[str, ...], rows: list[tuple[str, str, str, str]]) -> None:
        table = Table(title=title, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(column, justify="right" if column == "pid" else "left")
        for row in rows:
            table.add_row(*row)
        self.console.print(table)

    def lines(self, lines: list[str]) -> None:
        for line in lines:
            self.console.print(Text(line))


def part_rows(parts: list[Part], workdir: Path, existing: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(part, pid, listens on, log) for the summary table; servers given with --nats/--etcd first."""
    rows = [(name, "-", where, "(existing server)") for name, where in existing]
    for p in parts:
        try:
            log = str(p.proc.log_path.relative_to(workdir))
        except ValueError:
            log = str(p.proc.log_path)
        rows.append((p.name, str(p.pid), ", ".join(f"{k} :{v}" for k, v in p.ports.items()) or "-", log))
    return rows


def try_it_lines(workdir: Path, plan: PortPlan, nats_url: str, etcd_urls: list[str], opts: UpOptions) -> list[str]:
    """Where everything is and commands to paste, printed under the summary table."""
    front = f"127.0.0.1:{plan.front}"
    r1 = plan.routers[0]
    lines = [
        f"work dir      {workdir}   (state.json lists pids and ports; logs are here)",
        f"front         http://{front}/  HAProxy -> {len(plan.routers)} router(s), round-robin, "
        f"health-checked on /health",
        f"HAProxy stats http://127.0.0.1:{plan.haproxy_stats}/   confsync status "
        f"http://127.0.0.1:{plan.confsync_status}/status",
        f"dashboard     http://127.0.0.1:{plan.dashboard}/   (every router, HAProxy's view, confsync); "
        f"router-1's own: http://{ADMIN_USER}:{ADMIN_PASS}@127.0.0.1:{r1.routes}/dashboard",
        f"NATS          {nats_url}     etcd {', '.join(etcd_urls)} (routers under {opts.prefix}/routers)",
        "",
        "Try it:",
    ]
    if opts.demo:
        lines.append(f"  curl -H 'Host: {DEMO_HOST}' http://{front}/        # demo-1 and demo-2 take turns")
    lines += [
        f"  portico register   --nats {nats_url} --host 127.0.0.1 --port 9528 --uri test.a.com",
        f"  curl -H 'Host: test.a.com' http://{front}/",
        f"  portico routes     --url http://{ADMIN_USER}:{ADMIN_PASS}@127.0.0.1:{r1.routes}",
        f"  portico unregister --nats {nats_url} --host 127.0.0.1 --port 9528 --uri test.a.com",
        "  kill -9 <router pid>   # HAProxy routes around it"
        + ("; --restart brings it back" if not opts.restart else "; it is restarted"),
        "Ctrl-C stops everything.",
    ]
    return lines


def exit_line(part: Part, lease_ttl: float) -> tuple[str, str]:
    """(line, style) telling that a part exited and what that means for the stack."""
    code = exit_text(part.returncode)
    if part.critical and part.restart_at is None:
        return (f"{part.name} exited ({code}); the stack cannot work without it: stopping. "
                f"Last lines of {part.proc.log_path}:\n{log_tail(part.proc.log_path)}", "bold red")
    if part.kind is PartKind.ROUTER:
        return (f"{part.name} exited ({code}); HAProxy will route around it "
                f"(health check now, etcd lease expiry within {lease_ttl:g}s)", "bold yellow")
    if part.kind is PartKind.NATS:
        return (f"{part.name} exited ({code}); routers keep their routes (pruning is suspended while NATS is "
                "down) and the registrar registers again once it is back", "bold yellow")
    if part.kind is PartKind.ETCD:
        return (f"{part.name} exited ({code}); HAProxy keeps its config and traffic flows; routers announce "
                "themselves again and confsync resumes its watch once it is back", "bold yellow")
    if part.kind is PartKind.CONFSYNC:
        return f"confsync exited ({code}); HAProxy keeps its last config but no longer follows etcd", "bold yellow"
    return f"{part.name} exited ({code})", "bold yellow"


def haproxy_change_line(change: ServerChange, name: str) -> tuple[str, str]:
    """(line, style) for a router joining or leaving HAProxy's backend, or its health check changing."""
    if change.what == "joined":
        return f"HAProxy reloaded: {name} joined as server {change.name} ({change.status})", "cyan"
    if change.what == "status":
        return (f"HAProxy: {name} is {change.status}" + (" (health check failed)" if change.status == "DOWN" else ""),
                "green" if change.status == "UP" else "yellow")
    return (f"HAProxy reloaded: {name} left (server {change.name}; its etcd lease expired or it withdrew)",
            "cyan")


class ConfsyncLogTail:
    """Follows confsync's log and hands over the lines worth showing (renders, reloads, errors)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.position = 0

    def skip_to_end(self) -> None:
        """Start-up lines are summed up by "ready": show only what happens from now on."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return
        self.position = data.rfind(b"\n") + 1

    def new_messages(self) -> list[tuple[str, str]]:
        """(message, style) for every complete new line worth showing."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.position)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.position += end + 1
        out = []
        for raw in data[: end + 1].decode(errors="replace").splitlines():
            message = confsync_message(raw)
            if message:
                style = "red" if " ERROR " in raw else "yellow" if " WARN" in raw else "magenta"
                out.append((message, style))
        return out


_CONFSYNC_SHOWN = ("has been updated", "reload_cmd", "unreachable", "unavailable", "refus", "failed", "error",
                   "compacted")
_LOG_PREFIX = re.compile(r"^\S+ \S+ \S+ (?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\s+(.*)$")


def confsync_message(line: str) -> str | None:
    """The part of a confsync log line worth showing, or None for routine lines."""
    text = line.strip()
    if not text:
        return None
    lowered = text.lower()
    if not any(word in lowered for word in _CONFSYNC_SHOWN) and " WARN" not in text and " ERROR" not in text:
        return None
    # "2026-01-01 10:00:00,000 confsync INFO haproxy: ..." -> "haproxy: ..."
    match = _LOG_PREFIX.match(text)
    if match:
        text = match.group(1)
    text = text.replace("target config ", "")
    if text.endswith("reload_cmd ok"):
        text = text[: -len("reload_cmd ok")] + "HAProxy reloaded (hitless)"
    return text
