"""End to end: routers announce in a real etcd, confsync renders the shipped HAProxy resource, a real HAProxy
(master-worker) is checked and reloaded hitlessly, and traffic reaches the announced router."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request

import pytest
from polling import poll_until, wait_for

from portico.announce import RouterAnnouncer
from portico.config.settings import EtcdAnnounceSettings
from portico.confsync.shipped import haproxy_env, haproxy_master_argv, install_haproxy_resource
from portico.confsync.shipped.haproxy_ctl import master_command
from portico.stack.binaries import BinaryNotFound, haproxy_binary
from portico.stack.processes import ManagedProcess, free_port, wait_for_port

FAKE_ROUTER = r"""
import sys, http.server, threading
name, port, health = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (b"ok" if self.server.server_port == health else ("router " + name).encode())
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
for p in (port, health):
    s = http.server.ThreadingHTTPServer(("127.0.0.1", p), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
threading.Event().wait()
"""


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return 0, str(err)


@pytest.fixture
def haproxy_bin():
    try:
        return haproxy_binary()
    except BinaryNotFound as exc:
        pytest.skip(str(exc))


async def test_announced_routers_are_served_through_reloaded_haproxy(tmp_path, etcd_server, haproxy_bin):
    procs: list[ManagedProcess] = []
    announcers: list[RouterAnnouncer] = []

    def start(proc: ManagedProcess) -> ManagedProcess:
        procs.append(proc.start())
        return proc

    try:
        routers = {}
        for name in ("a", "b"):
            port, health = free_port(), free_port()
            start(ManagedProcess(f"router-{name}", [sys.executable, "-c", FAKE_ROUTER, name, str(port), str(health)],
                                 tmp_path / f"router-{name}.log"))
            routers[name] = (port, health)
        for _port, health in routers.values():
            wait_for_port(health)
        settings = EtcdAnnounceSettings(endpoints=(etcd_server.url,), prefix="/portico", lease_ttl=3)

        def announcer(name):
            port, health = routers[name]
            a = RouterAnnouncer(settings, f"router-{name}", f"127.0.0.1:{port}", health)
            announcers.append(a)
            return a

        ann_a = announcer("a")
        await ann_a.start()
        assert ann_a.registered.is_set()

        confdir, cfg = tmp_path / "confd", tmp_path / "haproxy" / "haproxy.cfg"
        cfg.parent.mkdir()
        front, master_sock, status_port = free_port(), tmp_path / "haproxy" / "master.sock", free_port()
        install_haproxy_resource(confdir, etcd_prefix="/portico", haproxy_cfg=cfg, front_port=front,
                                 haproxy_bin=haproxy_bin, master_socket=master_sock, check_interval="200ms",
                                 debounce=0.1, min_reload_interval=0.2)
        base = [sys.executable, "-m", "portico", "confsync", "--confdir", str(confdir), "--node", etcd_server.url]
        boot = await asyncio.to_thread(
            lambda: ManagedProcess("boot", [*base, "--onetime", "--sync-only"], tmp_path / "boot.log").start())
        procs.append(boot)
        assert await asyncio.to_thread(boot.popen.wait, 20) == 0, boot.output()
        assert "server router-a 127.0.0.1:{} check port {}".format(*routers["a"]) in cfg.read_text()

        haproxy = start(ManagedProcess("haproxy", haproxy_master_argv(haproxy_bin, cfg, tmp_path / "haproxy.pid",
                                                                      master_sock),
                                       tmp_path / "haproxy.log", env=haproxy_env(haproxy_bin)))
        await asyncio.to_thread(wait_for_port, front, "127.0.0.1", 10.0, haproxy.popen)
        start(ManagedProcess("confsync", [*base, "--watch", "--status-port", str(status_port)],
                             tmp_path / "confsync.log"))
        url = f"http://127.0.0.1:{front}/"
        await poll_until(lambda: _get(url), lambda r: r == (200, "router a"), message="router a via haproxy")

        # a second router comes, the first drains: haproxy is reloaded and serves only b
        await announcer("b").start()
        await ann_a.stop()
        await poll_until(lambda: cfg.read_text(),
                         lambda t: "router-b" in t and "router-a" not in t, message="re-render")
        await poll_until(lambda: [_get(url) for _ in range(4)],
                         lambda rs: all(r == (200, "router b") for r in rs), message="router b only")
        status_url = f"http://127.0.0.1:{status_port}/status"
        await poll_until(lambda: json.loads(_get(status_url)[1]),
                         lambda s: s["ok"] and s["resources"]["haproxy"]["reloads"] >= 1, message="reload on status")
        assert "worker" in master_command(str(master_sock), "show proc")
        assert (cfg.parent / "haproxy.cfg.state").exists(), "server state saved before reload"

        # a value haproxy rejects: check_cmd fails, the running config stays, traffic keeps flowing
        before = cfg.read_text()
        await asyncio.to_thread(_put, etcd_server.port, "/portico/routers/bad",
                                json.dumps({"id": "bad", "address": "not an address", "health_port": 1}))
        _code, body = await poll_until(lambda: _get(f"http://127.0.0.1:{status_port}/status"),
                                      lambda r: r[0] == 503, message="check failure on status")
        assert "check_cmd" in json.loads(body)["resources"]["haproxy"]["last_error"]
        assert cfg.read_text() == before
        assert _get(url) == (200, "router b")
    finally:
        for a in announcers:
            await a.stop(timeout=1.0)
        for proc in reversed(procs):
            await asyncio.to_thread(proc.stop)


def _put(port: int, key: str, value: str) -> None:
    import aetcd

    async def go():
        async with aetcd.Client(host="127.0.0.1", port=port, timeout=5) as c:
            await c.put(key.encode(), value.encode())
    asyncio.run(go())


def test_both_template_engines_render_the_access_log_and_retry_settings_alike(tmp_path, etcd_server):
    """The Jinja2 and the Go template of the shipped resource give the same file, with the access log target,
    the thread count and the settings that keep a killed router or a reload from costing a request."""
    _put(etcd_server.port, "/portico/routers/r1", json.dumps({"id": "r1", "address": "127.0.0.1:9", "health_port": 10}))
    rendered = {}
    for engine in ("jinja2", "go"):
        confdir, cfg = tmp_path / engine / "confd", tmp_path / engine / "haproxy.cfg"
        install_haproxy_resource(confdir, etcd_prefix="/portico", haproxy_cfg=cfg, front_port=8080,
                                 haproxy_bin="/usr/sbin/haproxy", master_socket=tmp_path / "m.sock",
                                 state_file=tmp_path / "state", access_log="fd@3 format raw local0", nbthread=1,
                                 engine=engine)
        proc = ManagedProcess("render", [sys.executable, "-m", "portico", "confsync", "--confdir", str(confdir),
                                         "--node", etcd_server.url, "--onetime", "--sync-only"],
                              tmp_path / f"{engine}.log").start()
        assert proc.popen.wait(30) == 0, proc.output()
        rendered[engine] = cfg.read_text()
    assert rendered["jinja2"] == rendered["go"]
    text = rendered["go"]
    for line in ("    log fd@3 format raw local0\n", "    nbthread 1\n", "    option httplog\n",
                 "    option idle-close-on-response\n", "    retry-on conn-failure empty-response\n",
                 "    http-request disable-l7-retry unless { method GET HEAD OPTIONS TRACE PUT DELETE }\n",
                 "    server r1 127.0.0.1:9 check port 10"):
        assert line in text, (line, text)


DROPPING_ROUTER = r"""
import socket, sys, threading
# A router that dies with every request in flight: reads the request head, then closes without answering.
# Its health port answers 200, so HAProxy keeps sending it traffic.
port, health = int(sys.argv[1]), int(sys.argv[2])
def serve(p, answer):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", p)); s.listen(64)
    while True:
        c, _ = s.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        if answer and data:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        c.close()
threading.Thread(target=serve, args=(health, True), daemon=True).start()
serve(port, False)
"""

COUNTING_ROUTER = r"""
import sys, http.server
port, health, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.server.server_port == port:
            with open(log, "a") as f:
                f.write(self.command + "\n")
        self.send_response(200); self.send_header("Content-Length", "1"); self.end_headers(); self.wfile.write(b"b")
    do_GET = do_POST = answer
    def log_message(self, *a): pass
import threading
for p in (port, health):
    s = http.server.ThreadingHTTPServer(("127.0.0.1", p), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
threading.Event().wait()
"""


def test_haproxy_sends_idempotent_requests_again_but_never_a_post_that_reached_a_router(tmp_path, etcd_server,
                                                                                      haproxy_bin):
    """Router `a` takes every request and closes without an answer (a router killed mid-request). A GET that
    met it is sent to router `b`; a POST that met it is answered 502 by HAProxy and never reaches `b`."""
    procs: list[ManagedProcess] = []
    try:
        ports = {name: (free_port(), free_port()) for name in ("a", "b")}
        seen = tmp_path / "b-methods.log"
        procs.append(ManagedProcess("a", [sys.executable, "-c", DROPPING_ROUTER, *map(str, ports["a"])],
                                    tmp_path / "a.log").start())
        procs.append(ManagedProcess("b", [sys.executable, "-c", COUNTING_ROUTER, *map(str, ports["b"]), str(seen)],
                                    tmp_path / "b.log").start())
        for name, (port, health) in ports.items():
            _put(etcd_server.port, f"/portico/routers/{name}",
                 json.dumps({"id": name, "address": f"127.0.0.1:{port}", "health_port": health}))
            wait_for_port(health)
        confdir, cfg, sock = tmp_path / "confd", tmp_path / "haproxy.cfg", tmp_path / "master.sock"
        front = free_port()
        install_haproxy_resource(confdir, etcd_prefix="/portico", haproxy_cfg=cfg, front_port=front,
                                 haproxy_bin=haproxy_bin, master_socket=sock, check_interval="200ms")
        render = ManagedProcess("render", [sys.executable, "-m", "portico", "confsync", "--confdir", str(confdir),
                                           "--node", etcd_server.url, "--onetime", "--sync-only"],
                                tmp_path / "render.log").start()
        assert render.popen.wait(30) == 0, render.output()
        haproxy = ManagedProcess("haproxy", haproxy_master_argv(haproxy_bin, cfg, tmp_path / "haproxy.pid", sock),
                                 tmp_path / "haproxy.log", env=haproxy_env(haproxy_bin)).start()
        procs.append(haproxy)
        wait_for_port(front, timeout=30, process=haproxy.popen)

        def both_up() -> bool:
            try:
                state = master_command(str(sock), "@1 show servers state portico_routers", 1.0)
            except OSError:   # the master CLI opens a moment after the front port
                return False
            rows = [line.split() for line in state.splitlines() if not line.startswith("#")]
            return sum(1 for f in rows if len(f) > 5 and f[1] == "portico_routers" and f[5] == "2") == 2
        deadline = time.monotonic() + 20
        while not both_up():
            assert time.monotonic() < deadline, "HAProxy did not see both routers UP"
            time.sleep(0.1)

        def send(method: str) -> int:
            data = b"x=1" if method == "POST" else None
            req = urllib.request.Request(f"http://127.0.0.1:{front}/", data=data, method=method)
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code

        gets = [send("GET") for _ in range(6)]
        posts = [send("POST") for _ in range(6)]
        assert gets == [200] * 6, gets
        assert set(posts) <= {200, 502} and 502 in posts, posts
        methods = seen.read_text().split() if seen.exists() else []
        assert methods.count("GET") == 6
        assert methods.count("POST") == posts.count(200)      # the POSTs router a swallowed were not replayed
    finally:
        for proc in reversed(procs):
            proc.stop()


MINIMAL_CFG = """global
    master-worker
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend front
    bind 127.0.0.1:{port}
    http-request return status 200
"""


def test_reloads_started_together_wait_for_each_other_and_all_succeed(tmp_path, haproxy_bin):
    """confsync and an operator may reload at the same moment. While HAProxy 2.6's master re-executes itself
    its CLI refuses connections, so without the lock next to the socket the second reload failed."""
    cfg, sock, front = tmp_path / "haproxy.cfg", tmp_path / "master.sock", free_port()
    cfg.write_text(MINIMAL_CFG.format(port=front))
    haproxy = ManagedProcess("haproxy", haproxy_master_argv(haproxy_bin, cfg, tmp_path / "haproxy.pid", sock),
                             tmp_path / "haproxy.log", env=haproxy_env(haproxy_bin)).start()
    reloaders: list[ManagedProcess] = []
    try:
        wait_for_port(front, timeout=30, process=haproxy.popen)
        wait_for(lambda: _master_answers(sock), timeout=30, message="master CLI answers")
        for i in range(3):
            reloaders.append(ManagedProcess(
                f"reload-{i}", [sys.executable, "-m", "portico.confsync.shipped.haproxy_ctl", "reload",
                                "--socket", str(sock), "--timeout", "60"], tmp_path / f"reload-{i}.log").start())
        codes = [r.popen.wait(90) for r in reloaders]
        assert codes == [0, 0, 0], [r.output() for r in reloaders]
        proc = master_command(str(sock), "show proc", 5.0)
        assert "master" in proc and " 3 [failed: 0]" in proc, proc   # three reloads, one after another
        assert _get(f"http://127.0.0.1:{front}/")[0] == 200
    finally:
        for r in reloaders:
            r.stop()
        haproxy.stop()


def _master_answers(sock) -> bool:
    try:
        return "master" in master_command(str(sock), "show proc", 1.0)
    except OSError:
        return False
