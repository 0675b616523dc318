"""Stage, compare, check, atomically replace, reload: confd's pipeline with timeouts on every command.

The staged file sits next to dest (hidden), so the final rename is atomic on the same filesystem and the
check command sees exactly the bytes that will be installed.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import logging
import os
import re
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from portico.confsync.resources import TemplateResource, resolve_owner

log = logging.getLogger("portico.confsync")

_SRC_PLACEHOLDER = re.compile(r"\{\{\s*\.?src\s*\}\}")


class SyncError(RuntimeError):
    """A step of the pipeline failed; dest is untouched unless the message says reload failed."""


@dataclass(slots=True)
class SyncResult:
    changed: bool          # dest differed (or would differ, in noop mode)
    written: bool          # dest was replaced
    reloaded: bool
    diff: str = ""


@dataclass(slots=True)
class CommandResult:
    returncode: int | None   # None: killed after the timeout
    output: str


async def run_command(cmd: str, timeout: float) -> CommandResult:
    """Run a shell command in its own process group; on timeout kill the whole group."""
    proc = await asyncio.create_subprocess_shell(
        cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True)
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
        return CommandResult(proc.returncode, out.decode(errors="replace").strip())
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        return CommandResult(None, f"timed out after {timeout:g}s")
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        raise


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _same(stage: Path, dest: Path) -> bool:
    """confd's comparison: same content hash, same mode, same owner."""
    try:
        d = dest.stat()
    except FileNotFoundError:
        return False
    s = stage.stat()
    return (s.st_mode & 0o7777, s.st_uid, s.st_gid) == (d.st_mode & 0o7777, d.st_uid, d.st_gid) \
        and _digest(stage) == _digest(dest)


def stage_file(resource: TemplateResource, content: str) -> Path:
    """Write content to a hidden file in dest's folder, with dest's final mode and owner."""
    dest = resource.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    stage = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:     # bytes exactly as rendered (no newline or locale translation)
            f.write(content.encode("utf-8", errors="surrogateescape"))
        mode = resource.mode
        if mode is None:   # as confd: keep dest's current mode, else 0644
            try:
                mode = dest.stat().st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o644
        os.chmod(stage, mode)
        st = stage.stat()
        want_uid, want_gid = resolve_owner(resource)
        uid = st.st_uid if want_uid is None else want_uid
        gid = st.st_gid if want_gid is None else want_gid
        if (uid, gid) != (st.st_uid, st.st_gid):
            os.chown(stage, uid, gid)
    except Exception:
        stage.unlink(missing_ok=True)
        raise
    return stage


def unified_diff(dest: Path, new: str) -> str:
    try:
        old = dest.read_text(errors="replace")
    except FileNotFoundError:
        old = ""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=str(dest), tofile=f"{dest} (new)"))


async def sync(resource: TemplateResource, content: str, *, noop: bool = False, sync_only: bool = False,
               keep_stage_file: bool = False, reload: bool = True) -> SyncResult:
    """Install `content` at resource.dest if it differs, after check_cmd; then run reload_cmd."""
    stage = stage_file(resource, content)
    try:
        if _same(stage, resource.dest):
            log.debug("%s: %s is in sync", resource.name, resource.dest)
            return SyncResult(changed=False, written=False, reloaded=False)
        log.info("%s: target config %s out of sync", resource.name, resource.dest)
        if noop:
            diff = unified_diff(resource.dest, content)
            log.warning("%s: noop mode, not updating %s", resource.name, resource.dest)
            return SyncResult(changed=True, written=False, reloaded=False, diff=diff)
        if resource.check_cmd and not sync_only:
            cmd = _SRC_PLACEHOLDER.sub(str(stage), resource.check_cmd)
            result = await run_command(cmd, resource.check_timeout)
            if result.returncode != 0:
                why = "timed out" if result.returncode is None else f"exited {result.returncode}"
                raise SyncError(f"check_cmd {why}, {resource.dest} left unchanged: {_tail(result.output)}")
        os.replace(stage, resource.dest)
        log.info("%s: target config %s has been updated", resource.name, resource.dest)
        reloaded = False
        if resource.reload_cmd and not sync_only and reload:
            result = await run_command(resource.reload_cmd, resource.reload_timeout)
            if result.returncode != 0:
                why = "timed out" if result.returncode is None else f"exited {result.returncode}"
                raise SyncError(f"reload_cmd {why} (new {resource.dest} is installed): {_tail(result.output)}")
            reloaded = True
            log.info("%s: reload_cmd ok", resource.name)
        return SyncResult(changed=True, written=True, reloaded=reloaded)
    finally:
        if stage.exists() and not keep_stage_file:
            stage.unlink(missing_ok=True)


def _tail(output: str, limit: int = 600) -> str:
    output = " | ".join(line for line in output.splitlines() if line.strip())
    return output[-limit:] if output else "(no output)"
