"""A steady HTTP/1.1 load that counts every failure: paced requests over keep-alive connections.

wrk reports totals; a fault scenario needs each failed request with its time and kind (refused, reset,
truncated body, 5xx, 404), so this client is our own. It runs on its own event loop in a background thread,
is bounded by the rate it is given, and reconnects after any failure the way a real client would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Failure:
    at: float        # seconds since the load started
    kind: str        # "connect", "reset", "timeout", "truncated", "status 502", ...


@dataclass
class LoadStats:
    sent: int = 0
    ok: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    ok_at: list[float] = field(default_factory=list)    # seconds since the load started, per ok response
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    def failure_kinds(self) -> dict[str, int]:
        return dict(Counter(f.kind for f in self.failures))

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def figures(self, prefix: str = "") -> dict[str, object]:
        return {f"{prefix}requests": self.sent, f"{prefix}ok": self.ok, f"{prefix}failed": self.failed,
                f"{prefix}failure kinds": self.failure_kinds() or "none",
                f"{prefix}rate (req/s)": round(self.sent / self.seconds, 1) if self.seconds else 0,
                f"{prefix}p50 ms": self.percentile_ms(50), f"{prefix}p99 ms": self.percentile_ms(99)}


class ResponseError(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """(status, body bytes, keep-alive) of one response; ResponseError("truncated") when the body is cut."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise ResponseError("reset" if not exc.partial else "truncated head") from None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close"
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            size_total = 0
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    return status, size_total, keep
                await reader.readexactly(size + 2)
                size_total += size
        if "content-length" in headers:
            n = int(headers["content-length"])
            await reader.readexactly(n)
            return status, n, keep
        if status in (204, 304) or 100 <= status < 200:
            return status, 0, keep
        body = await reader.read()   # close-delimited: cannot tell a cut body from a whole one
        return status, len(body), False
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        raise ResponseError("truncated") from None


class SteadyLoad:
    """`rate` requests a second in total over `connections` keep-alive connections, until stop().

    A request counts as ok when it gets `expect` (200) with a whole body within `timeout` seconds.
    """

    def __init__(self, port: int, host: str, path: str = "/", rate: float = 100.0, connections: int = 4,
                 timeout: float = 10.0, expect: int = 200) -> None:
        self.port, self.host, self.path = port, host, path
        self.rate, self.connections, self.timeout, self.expect = rate, connections, timeout, expect
        self.stats = LoadStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: portico-reliability\r\n\r\n".encode()

    def start(self) -> SteadyLoad:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True, name="load")
        self._thread.start()
        return self

    def stop(self) -> LoadStats:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)
        self.stats.seconds = time.monotonic() - self._t0
        return self.stats

    def __enter__(self) -> SteadyLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def seconds_at(self, monotonic: float) -> float:
        """A time.monotonic() value as seconds since the load started (the clock of Failure.at)."""
        return monotonic - self._t0

    def first_ok_after(self, monotonic: float) -> float | None:
        """Seconds from `monotonic` to the first ok response after it (None when there was none)."""
        start = monotonic - self._t0
        later = [t for t in self.stats.ok_at if t >= start]
        return round(min(later) - start, 3) if later else None

    def failures_between(self, start: float, end: float) -> int:
        """Failures that happened between these time.monotonic() values."""
        return sum(1 for f in self.stats.failures if start - self._t0 <= f.at <= end - self._t0)

    def _fail(self, kind: str) -> None:
        self.stats.failures.append(Failure(round(time.monotonic() - self._t0, 3), kind))

    async def _main(self) -> None:
        await asyncio.gather(*(self._connection(i) for i in range(self.connections)))

    async def _connection(self, index: int) -> None:
        interval = self.connections / self.rate
        next_at = time.monotonic() + interval * index / self.connections
        writer: asyncio.StreamWriter | None = None
        reader: asyncio.StreamReader | None = None
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at = max(next_at + interval, time.monotonic() - interval)
            self.stats.sent += 1
            t = time.monotonic()
            try:
                if writer is None:
                    try:
                        reader, writer = await asyncio.wait_for(
                            asyncio.open_connection("127.0.0.1", self.port), self.timeout)
                    except (TimeoutError, OSError):
                        raise ResponseError("connect") from None
                assert reader is not None and writer is not None
                writer.write(self._request)
                status, _, keep = await asyncio.wait_for(read_response(reader), self.timeout)
            except ResponseError as err:
                self._fail(err.kind)
                writer = self._close(writer)
                continue
            except TimeoutError:
                self._fail("timeout")
                writer = self._close(writer)
                continue
            except (ConnectionError, OSError):
                self._fail("reset")
                writer = self._close(writer)
                continue
            self.stats.statuses[status] += 1
            if status == self.expect:
                self.stats.ok += 1
                done = time.monotonic()
                self.stats.latencies.append(done - t)
                self.stats.ok_at.append(done - self._t0)
            else:
                self._fail(f"status {status}")
            if not keep:
                writer = self._close(writer)
        self._close(writer)

    @staticmethod
    def _close(writer: asyncio.StreamWriter | None) -> None:
        if writer is not None:
            writer.transport.abort()
        return None
