"""The stack's dashboard for `portico up`: every router, HAProxy's view of them and confsync's last reload.

One small page, served from a thread of `portico up` on 127.0.0.1. Its `/state` reads each router's
`/dashboard/state` (over the routes port, with the admin credentials), takes HAProxy's server states from the
supervision loop and asks confsync's status port; the page polls it every two seconds and links to each
router's own live dashboard.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class RouterLink:
    name: str
    proxy: int
    routes: int


class StackDashboard:
    def __init__(self, port: int, routers: Callable[[], list[RouterLink]],
                 haproxy: Callable[[], dict[str, tuple[str, str]] | None], confsync_status_port: int,
                 user: str, password: str) -> None:
        self.port = port
        self._routers = routers
        self._haproxy = haproxy
        self._confsync_port = confsync_status_port
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._credentials = f"{user}:{password}"
        self._page = (resources.files("portico.status") / "dashboard_assets" / "stack.html").read_bytes()
        self._server: ThreadingHTTPServer | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="stack-dashboard")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start_or_report(self, say: Callable[[str, str], None]) -> StackDashboard | None:
        """Start serving; a failure to listen is reported and the stack runs on without its page (None)."""
        try:
            self.start()
        except OSError as exc:
            say(f"the stack dashboard could not listen on :{self.port}: {exc}", "yellow")
            return None
        return self

    def start(self) -> None:
        dashboard = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/":
                    self._answer(200, dashboard._page, "text/html; charset=utf-8")
                elif path == "/state":
                    self._answer(200, json.dumps(dashboard.state()).encode(), "application/json")
                else:
                    self._answer(404, b"404 Not Found\n", "text/plain")

            def _answer(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the page polls every 2 s; nothing worth a line in `portico up`'s output

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="stack-dashboard", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._pool.shutdown(wait=False)

    # ---- what the page shows ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        links = self._routers()
        futures = [self._pool.submit(self._router_state, link) for link in links]
        confsync = self._pool.submit(self._get, f"http://127.0.0.1:{self._confsync_port}/status", False)
        haproxy = self._haproxy() or {}
        by_address = {addr: (sv, status) for sv, (addr, status) in haproxy.items()}
        routers = []
        for link, future in zip(links, futures, strict=True):
            row = future.result()
            sv, status = by_address.get(f"127.0.0.1:{link.proxy}", ("", "absent"))
            row.update(haproxy_server=sv, haproxy_status=status)
            routers.append(row)
        ours = {f"127.0.0.1:{link.proxy}" for link in links}
        return {
            "routers": routers,
            "haproxy": [{"server": sv, "address": addr, "status": status, "ours": addr in ours}
                        for sv, (addr, status) in sorted(haproxy.items())],
            "confsync": confsync.result(),
        }

    def _router_state(self, link: RouterLink) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": link.name, "proxy": link.proxy,
            "dashboard": f"http://{self._credentials}@127.0.0.1:{link.routes}/dashboard",
        }
        state = self._get(f"http://127.0.0.1:{link.routes}/dashboard/state", True)
        if "error" in state:
            row.update(reachable=False, error=state["error"])
        else:
            row.update(reachable=True, router=state["router"], now=state["now"], routes=state["routes"][:5])
        return row

    def _get(self, url: str, auth: bool) -> dict[str, Any]:
        request = urllib.request.Request(url)
        if auth:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=1.5) as resp:
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as err:
            try:
                return dict(json.loads(err.read()))   # confsync answers 503 with its JSON when unhealthy
            except ValueError:
                return {"error": f"HTTP {err.code}"}
        except (OSError, ValueError) as exc:
            return {"error": str(exc)}
