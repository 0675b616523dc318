"""The dashboard's cost: browsers kept on a router's /dashboard/events while wrk measures it.

A browser with the page open holds one server-sent events stream and takes one event a second; `DashboardViewers`
does exactly that from threads of the harness (on the load generator's side), reading and counting the events
so the router really builds and writes them.
"""

from __future__ import annotations

import base64
import http.client
import threading


class DashboardViewers:
    def __init__(self, routes_port: int, user: str = "admin", password: str = "admin", count: int = 1) -> None:
        self.routes_port = routes_port
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.count = count
        self.events = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def __enter__(self) -> DashboardViewers:
        for _ in range(self.count):
            t = threading.Thread(target=self._view, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._lock:
            for conn in self._conns:
                conn.close()
        for t in self._threads:
            t.join(5)

    def _view(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.routes_port, timeout=10)
        with self._lock:
            self._conns.append(conn)
        try:
            conn.request("GET", "/dashboard/events", headers={"Authorization": self.auth})
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"/dashboard/events answered {resp.status}")
            while not self._stop.is_set():
                line = resp.readline()
                if not line:
                    return
                if line.startswith(b"data: "):
                    with self._lock:
                        self.events += 1
        except (OSError, ValueError):
            return
