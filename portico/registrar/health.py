"""Health checks: run a script (exit 0 = healthy) or GET a URL (2xx = healthy), bounded by a timeout.

A check never raises: it returns a `CheckResult` whose `detail` says why it failed, for the log.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import urllib.error
import urllib.request
from dataclasses import dataclass

from portico.registrar.config import HealthCheck

_OUTPUT_LIMIT = 300  # characters of a failing script's output kept for the log


@dataclass(frozen=True)
class CheckResult:
    healthy: bool
    detail: str


async def run_check(check: HealthCheck) -> CheckResult:
    if check.script_path:
        return await run_script(check.script_path, check.timeout)
    assert check.http_url
    return await get_url(check.http_url, check.timeout)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_script(path: str, timeout: float) -> CheckResult:
    """Run `path` in its own process group; healthy when it exits 0 within `timeout`.

    On timeout (or when the caller is cancelled) the whole group gets SIGKILL, as route-registrar does.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            path, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        return CheckResult(False, f"cannot run {path}: {exc.strerror or exc}")
    try:
        async with asyncio.timeout(timeout):
            output, _ = await proc.communicate()
    except TimeoutError:
        _kill_group(proc)
        await proc.wait()
        return CheckResult(False, f"{path} did not finish within {timeout:g}s and was killed")
    except asyncio.CancelledError:
        _kill_group(proc)
        await asyncio.shield(proc.wait())
        raise
    finally:
        if proc.returncode is None:
            _kill_group(proc)
    if proc.returncode == 0:
        return CheckResult(True, f"{path} exited 0")
    text = " ".join(output.decode(errors="replace").split())[-_OUTPUT_LIMIT:]
    code = proc.returncode or 0
    status = f"was killed by signal {-code}" if code < 0 else f"exited {code}"
    return CheckResult(False, f"{path} {status}" + (f": {text}" if text else ""))


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a health check never goes via a proxy


def _get(url: str, timeout: float) -> int:
    request = urllib.request.Request(url, headers={"User-Agent": "portico-registrar"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def get_url(url: str, timeout: float) -> CheckResult:
    """GET `url`; healthy on a 2xx answer within `timeout` (redirects are followed)."""
    try:
        async with asyncio.timeout(timeout):
            status = await asyncio.to_thread(_get, url, timeout)
    except TimeoutError:
        return CheckResult(False, f"GET {url} did not answer within {timeout:g}s")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return CheckResult(False, f"GET {url} failed: {reason}")
    if 200 <= status < 300:
        return CheckResult(True, f"GET {url} answered {status}")
    return CheckResult(False, f"GET {url} answered {status}")
