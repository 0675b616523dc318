"""Helpers for end-to-end tests: a real router process, real backends, raw-socket HTTP clients.

Everything listens on 127.0.0.1. Backends run on one asyncio loop in a background thread; the router runs as
`python -m portico router -c <file>` in its own process group and is always stopped by its fixture.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from polling import wait_for

from portico.stack.processes import ManagedProcess, free_port, hold_port

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------------------------
# A loop in a background thread, for backends and the NATS client


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True, name="e2e-loop")
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def _cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(_cancel_all(), timeout=5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


_LOOP: LoopThread | None = None


def loop_thread() -> LoopThread:
    global _LOOP
    if _LOOP is None:
        _LOOP = LoopThread()
    return _LOOP


# ---------------------------------------------------------------------------------------------------------------
# Backends


async def _read_request(reader: asyncio.StreamReader):
    """(method, target, version, headers list, raw_head) or None at EOF. Body is read by the caller."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return method, target, version, headers, head


async def _read_body(reader, headers) -> bytes:
    h = {k.lower(): v for k, v in headers}
    if "chunked" in h.get("transfer-encoding", "").lower():
        out = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return bytes(out)
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    n = int(h.get("content-length", "0") or 0)
    if n:
        # hash big uploads without holding them twice
        return await reader.readexactly(n)
    return b""


class Backend:
    """An HTTP/1.1 app on 127.0.0.1 whose behaviour is chosen by the request path.

    /echo (default): 200 JSON {name, method, path, headers, body_len, body_sha256, conn}
    /big?mb=N       N MiB with Content-Length       /chunked?n=K  K chunks
    /slow?s=X       answer after X s                 /hang         never answer
    /die            Content-Length 100000, send 1000 bytes, close
    /close          close-delimited body             /status/NNN   that status (no body for 204/304)
    /cookie         sets JSESSIONID (Secure when ?secure, Max-Age=N when ?maxage=N)
    /hop            response with hop-by-hop headers /vcapid       sets its own X-Vcap-Request-Id
    /negotiate      answers with WWW-Authenticate: Negotiate
    /continue       answers Expect: 100-continue then echoes
    /raw-upgrade    answers 101 (Upgrade: echo), then echoes raw bytes until the client closes
    """

    def __init__(self, name: str = "app", tls: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.tls = tls
        self.port = 0
        self.server: asyncio.AbstractServer | None = None
        self.connections = 0          # accepted connections
        self.requests: list[dict] = []
        self.open_writers: set = set()
        self.lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Backend:
        lt = loop_thread()

        async def _start():
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
            self.port = self.server.sockets[0].getsockname()[1]

        lt.run(_start())
        return self

    def stop(self) -> None:
        async def _stop():
            if self.server is not None:
                self.server.close()
            for w in list(self.open_writers):
                w.transport.abort()
        loop_thread().run(_stop())

    async def _serve(self, reader, writer) -> None:
        with self.lock:
            self.connections += 1
            conn_id = self.connections
        self.open_writers.add(writer)
        try:
            while True:
                req = await _read_request(reader)
                if req is None:
                    break
                keep = await self._handle(conn_id, reader, writer, *req)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            self.open_writers.discard(writer)
            try:
                writer.close()
            except Exception:
                pass

    async def _handle(self, conn_id, reader, writer, method, target, version, headers, raw_head) -> bool:
        path, _, query = target.partition("?")
        if path == "/raw-upgrade":
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            return False
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        h = {k.lower(): v for k, v in headers}
        record = {"method": method, "path": path, "headers": headers, "conn": conn_id}
        with self.lock:
            self.requests.append(record)
        if path.startswith("/continue") and h.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if path.startswith("/hang"):
            await reader.read()       # until the router gives up
            return False
        body = await _read_body(reader, headers)
        record["body_len"] = len(body)
        close = h.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        conn_hdr = b"Connection: close\r\n" if close else b""
        if path.startswith("/slow"):
            await asyncio.sleep(float(params.get("s", "1")))
        if path.startswith("/big"):
            n = int(float(params.get("mb", "1")) * 1024 * 1024)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (n, conn_hdr))
            chunk = b"x" * 65536
            sent = 0
            while sent < n:
                part = chunk[: min(65536, n - sent)]
                writer.write(part)
                sent += len(part)
                await writer.drain()
            return not close
        if path.startswith("/chunked"):
            n = int(params.get("n", "5"))
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n" % conn_hdr)
            for i in range(n):
                piece = b"chunk-%d;" % i
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return not close
        if path.startswith("/die"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"d" * 1000)
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.transport.abort()
            return False
        if path.startswith("/close"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
            for i in range(3):
                writer.write(b"part-%d;" % i)
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.close()
            return False
        if path.startswith("/oneshot"):
            # keep-alive by the headers, but the backend closes the connection soon after (an idle timeout)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\noneshot")
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.transport.close()
            return False
        if path.startswith("/badframing"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"3\r\nabc\r\n0\r\n\r\n")
            await writer.drain()
            return False
        if path.startswith("/status/"):
            status = int(path.split("/")[2])
            reason = {204: b"No Content", 304: b"Not Modified"}.get(status, b"Whatever")
            extra = b"" if status in (204, 304) else b"Content-Length: 2\r\n"
            writer.write(b"HTTP/1.1 %d %s\r\nETag: \"e1\"\r\n%s%s\r\n" % (status, reason, extra, conn_hdr))
            if status not in (204, 304) and method != "HEAD":
                writer.write(b"ok")
            await writer.drain()
            return not close
        extra_headers = b""
        if path.rsplit("/", 1)[-1] == "cookie":
            attrs = b"; Secure" if "secure" in params else b""
            if "maxage" in params:
                attrs += b"; Max-Age=" + params["maxage"].encode()
            extra_headers += b"Set-Cookie: JSESSIONID=sess-%s; Path=/%s\r\n" % (self.name.encode(), attrs)
        if path.startswith("/hop"):
            extra_headers += (b"Connection: X-Private, keep-alive\r\nX-Private: secret\r\nKeep-Alive: timeout=5\r\n"
                              b"Proxy-Authenticate: Basic\r\nTrailer: X-T\r\nX-Public: yes\r\n")
        if path.startswith("/negotiate"):
            extra_headers += b"WWW-Authenticate: Negotiate YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIG\r\n"
        if path.startswith("/vcapid"):
            extra_headers += b"X-Vcap-Request-Id: from-backend\r\n"
        if h.get("upgrade"):
            extra_headers += b"X-Refused-Upgrade: yes\r\n"
        payload = json.dumps({
            "name": self.name, "method": method, "path": target, "headers": headers, "conn": conn_id,
            "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest(), "version": version,
        }).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s\r\n"
                     % (len(payload), extra_headers, conn_hdr))
        if method != "HEAD":
            writer.write(payload)
        await writer.drain()
        return not close


class WsBackend:
    """A websocket echo server (the `websockets` package); `/close` closes right after the first message."""

    def __init__(self, name: str = "ws") -> None:
        self.name = name
        self.port = 0
        self.server = None
        self.closed_by_peer = threading.Event()

    def start(self) -> WsBackend:
        from websockets.asyncio.server import serve

        async def handler(ws):
            try:
                async for msg in ws:
                    if msg == "close-me":
                        await ws.close(code=4000, reason="bye")
                        return
                    await ws.send(f"{self.name}:{msg}")
            except Exception:
                pass
            finally:
                self.closed_by_peer.set()

        async def _start():
            self.server = await serve(handler, "127.0.0.1", 0)
            self.port = next(iter(self.server.sockets)).getsockname()[1]

        loop_thread().run(_start())
        return self

    def stop(self) -> None:
        async def _stop():
            self.server.close()
        loop_thread().run(_stop())


# ---------------------------------------------------------------------------------------------------------------
# NATS


def nats_publish(nats_url: str, subject: str, payload) -> None:
    import nats

    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    async def _pub():
        nc = await nats.connect(nats_url, connect_timeout=5)
        try:
            await nc.publish(subject, data)
            await nc.flush()
        finally:
            await nc.close()

    loop_thread().run(_pub())


def registration(uri, port, *, host="127.0.0.1", app="", instance_id="", index=None, tls_port=0, san="",
                 ttl=0, lb="", tags=None, route_service_url="", az="", protocol="") -> dict:
    msg = {"host": host, "port": port, "uris": [uri] if isinstance(uri, str) else list(uri)}
    if protocol:
        msg["protocol"] = protocol
    if app:
        msg["app"] = app
    if instance_id:
        msg["private_instance_id"] = instance_id
    if index is not None:
        msg["private_instance_index"] = str(index)
    if tls_port:
        msg["tls_port"] = tls_port
    if san:
        msg["server_cert_domain_san"] = san
    if ttl:
        msg["stale_threshold_in_seconds"] = ttl
    if lb:
        msg["options"] = {"loadbalancing": lb}
    if tags:
        msg["tags"] = tags
    if route_service_url:
        msg["route_service_url"] = route_service_url
    if az:
        msg["availability_zone"] = az
    return msg


def unique_host(prefix: str = "app") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}.e2e.test"


# ---------------------------------------------------------------------------------------------------------------
# The router


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


USER, PASS = "admin", "s3cret"


@dataclass
class Router:
    workdir: Path
    nats_url: str
    nats_port: int
    overrides: dict = field(default_factory=dict)
    process: ManagedProcess | None = None
    config: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)     # extra environment, e.g. {"PORTICO_PURE_PYTHON": "1"}

    def __post_init__(self) -> None:
        self.port = free_port()
        self.status_port = free_port()
        self.routes_port = free_port()
        self.ssl_port = free_port()
        self.access_log = self.workdir / "access.log"
        base = {
            "port": self.port,
            "listen_host": "127.0.0.1",
            "ssl_port": self.ssl_port,
            "ip": "127.0.0.1",
            "status": {"host": "127.0.0.1", "port": self.status_port, "user": USER, "pass": PASS,
                       "routes": {"port": self.routes_port}},
            "nats": {"hosts": [{"hostname": "127.0.0.1", "port": self.nats_port}]},
            "start_response_delay_interval": "0s",
            "access_log": {"file": str(self.access_log)},
            "logging": {"level": "info", "file": str(self.workdir / "router.log")},
            "route_snapshot": {"file": str(self.workdir / "routes-snapshot.json")},
        }
        self.config = _merge(base, self.overrides)
        if "ssl_port" in self.config:
            self.ssl_port = self.config["ssl_port"]
        # older status layout (`_older_status: true`): status.port only, /routes there behind auth
        if self.config.pop("_older_status", False):
            self.config["status"].pop("routes", None)
            self.routes_port = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "gorouter.yml"

    def start(self, wait_healthy: bool = True) -> Router:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config))
        argv = [PYTHON, "-m", "portico", "router", "-c", str(self.config_path)]
        env = {**os.environ, **self.env} if self.env else None
        self.process = ManagedProcess("router", argv, self.workdir / "router.out", cwd=str(REPO), env=env).start()
        if wait_healthy:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.running():
                raise RuntimeError(f"router exited {self.process.popen.returncode}:\n{self.output()}")
            try:
                if self.health()[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"router not healthy after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        text = self.process.output() if self.process else ""
        log = self.workdir / "router.log"
        if log.exists():
            text += log.read_text(errors="replace")
        return text

    def stop(self) -> int | None:
        """Stop the router and hold its ports (hold_port): a test may start it again on them."""
        if self.process is None:
            return None
        code = self.process.stop()
        for port in {self.port, self.status_port, self.routes_port, self.ssl_port} - {None, 0}:
            try:
                hold_port(port)
            except OSError:   # not ours to hold (an override pointed the router at a port in use)
                pass
        return code

    @property
    def pid(self) -> int:
        return self.process.pid

    # -- status --

    def _get_status(self, port: int, path: str, auth: bool = True) -> tuple[int, dict, bytes]:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        if auth:
            token = base64.b64encode(f"{USER}:{PASS}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def health(self) -> tuple[int, bytes]:
        status, _, body = self._get_status(self.status_port, "/health", auth=False)
        return status, body

    def routes(self, auth: bool = True) -> tuple[int, dict, bytes]:
        port = self.routes_port if self.routes_port is not None else self.status_port
        return self._get_status(port, "/routes", auth=auth)

    def varz(self) -> dict:
        status, _, body = self._get_status(self.status_port, "/varz")
        assert status == 200, body
        return json.loads(body)

    def routes_json(self) -> dict:
        status, _, body = self.routes()
        assert status == 200, body
        return json.loads(body)

    def wait_route(self, uri: str, address: str | None = None, present: bool = True, timeout: float = 10.0):
        key = uri.lower().rstrip("/")

        def reached() -> tuple[dict] | None:   # a tuple: an empty table is a result too
            table = self.routes_json()
            eps = [e["address"] for e in table.get(key, [])]
            found = (address in eps) if address else bool(eps)
            return (table,) if found == present else None

        return wait_for(reached, timeout, 0.03, f"route {uri} {address} present={present}",
                        detail=lambda: f"table: {self.routes_json()}")[0]

    # -- registration --

    def register(self, uri, port, wait: bool = True, **kw) -> dict:
        msg = registration(uri, port, **kw)
        nats_publish(self.nats_url, "router.register", msg)
        if wait:
            for u in msg["uris"]:
                self.wait_route(u, f"{msg['host']}:{msg.get('tls_port') or port}")
        return msg

    def unregister(self, uri, port, wait: bool = True, **kw) -> None:
        msg = registration(uri, port, **kw)
        nats_publish(self.nats_url, "router.unregister", msg)
        if wait:
            for u in msg["uris"]:
                self.wait_route(u, f"{msg['host']}:{msg.get('tls_port') or port}", present=False)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def access_lines(self, needle: str, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.access_log.exists():
                lines = [line for line in self.access_log.read_text().splitlines() if needle in line]
                if lines:
                    return lines
            time.sleep(0.05)
        return []


# ---------------------------------------------------------------------------------------------------------------
# A raw HTTP/1.1 client


@dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: list
    body: bytes
    complete: bool = True

    def header(self, name: str, default=None):
        name = name.lower()
        values = [v for k, v in self.headers if k.lower() == name]
        return ", ".join(values) if values else default

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Client:
    """One client connection. `request()` writes a request and reads its response; raw `send()` too."""

    def __init__(self, port: int, *, ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None,
                 timeout: float = 10.0) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname)
        self.sock = sock
        self.file = sock.makefile("rb")

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, path: str, host: str | None, headers=(), body: bytes | None = None,
                version: str = "HTTP/1.1") -> Response:
        self.send(build_request(method, path, host, headers, body, version))
        return self.read_response(method)

    def read_response(self, method: str = "GET", skip_interim: bool = True) -> Response:
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("connection closed before a response")
            version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
            code, _, reason = rest.partition(" ")
            status = int(code)
            headers = []
            while True:
                hl = self.file.readline()
                if hl in (b"\r\n", b"\n", b""):
                    break
                name, _, value = hl.decode("latin-1").rstrip("\r\n").partition(":")
                headers.append((name.strip(), value.strip()))
            resp = Response(status, reason, version, headers, b"")
            if 100 <= status < 200:
                if skip_interim and status != 101:
                    continue
                return resp
            break
        if method == "HEAD" or status in (204, 304):
            return resp
        te = (resp.header("transfer-encoding") or "").lower()
        cl = resp.header("content-length")
        if "chunked" in te:
            body = bytearray()
            while True:
                size_line = self.file.readline()
                if not size_line:
                    resp.complete = False
                    break
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.file.readline() not in (b"\r\n", b""):
                        pass
                    break
                data = self.file.read(size)
                body += data
                if len(data) < size or self.file.read(2) != b"\r\n":
                    resp.complete = False
                    break
            resp.body = bytes(body)
        elif cl is not None:
            n = int(cl)
            data = self.file.read(n) if n else b""
            resp.body = data or b""
            resp.complete = len(resp.body) == n
        else:
            resp.body = self.file.read()
        return resp

    def read_body_stream(self, n: int, chunk: int = 1 << 20) -> int:
        got = 0
        while got < n:
            data = self.file.read(min(chunk, n - got))
            if not data:
                break
            got += len(data)
        return got

    def is_closed(self, timeout: float = 3.0) -> bool:
        """True when the peer closed (EOF or reset) within `timeout`, with nothing more to read."""
        self.sock.settimeout(timeout)
        try:
            data = self.file.read1(65536) if hasattr(self.file, "read1") else self.sock.recv(65536)
        except TimeoutError:
            return False
        except (ConnectionResetError, OSError):
            return True
        return data == b""


def build_request(method: str, path: str, host: str | None, headers=(), body: bytes | None = None,
                  version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    names = {k.lower() for k, _ in headers}
    for k, v in headers:
        lines.append(f"{k}: {v}")
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def get(port: int, host: str | None, path: str = "/", headers=(), method: str = "GET", body=None,
        **kw) -> Response:
    with Client(port, **kw) as c:
        return c.request(method, path, host, headers, body)


def dead_port() -> int:
    """A port with nothing listening (connect refused)."""
    return free_port()


__all__ = [
    "PASS",
    "USER",
    "Backend",
    "Client",
    "Response",
    "Router",
    "WsBackend",
    "build_request",
    "dead_port",
    "get",
    "loop_thread",
    "nats_publish",
    "os",
    "registration",
    "signal",
    "unique_host",
    "wait_for",
]


# The proxy tests that run against both implementations (`router` fixtures parametrised with these).
IMPLEMENTATIONS = ("compiled", "pure")


def implementation_env(implementation: str) -> dict:
    """The environment for a router running `implementation`; 'compiled' is skipped where nothing is built.

    tests/test_compiled_build.py fails on its own when a C compiler is there and the build is missing.
    """
    import pytest

    from portico._compiled import PURE_ENV, select

    if implementation == "pure":
        return {PURE_ENV: "1"}
    chosen = select(environ={})
    if not chosen.compiled:
        pytest.skip(f"no compiled modules to test: {chosen.reason}")
    return {PURE_ENV: "0"}
