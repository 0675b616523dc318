# cython: annotation_typing=False
"""Backpressure between a client and the backend serving it, both ways, as one object.

Each direction has one rule: while the side being written to cannot take more, the side it is fed from is not
read; when it can again, reading resumes. Several reasons can stop one side at once (the backend's write buffer
is full *and* a pending request body reached its bound), so each reason is a bit that only its owner sets and
clears: one reason ending never resumes reading another still holds, and a reason given back twice is a no-op.

A client connection (or HTTP/2 front stream) owns one Flow for its life, for both directions: the unit that changes
is the pair (this client, the backend serving it now), so one object means one attach and one detach per exchange,
and a tunnel simply keeps the pair. The backend serving the current exchange is attached (Exchange._attach) and
detached when the exchange lets go of it; a WebSocket tunnel keeps it attached. Detaching gives back everything the
backend held: a paused backend reads again before it is pooled, and a client paused because that backend's write
buffer was full reads again. A backend's late `resume_writing` after it left (pooled, then maybe serving another
client) finds itself no longer attached and changes nothing. Reasons taken while no backend is attached (the
client's buffer filled between two pipelined exchanges) apply to the next backend the moment it attaches.

A plain GET touches the flow twice (attach, detach): two C calls when compiled (flow.pxd).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portico.proxy.backend_side import BackendSide
    from portico.proxy.client_base import ClientBase

# Why a side is not read. Each bit has one owner, which alone takes and gives it back.
WRITE_FULL = 1      # the other side's write buffer is over its high-water mark (or its HTTP/2 window is shut)
PENDING_BODY = 2    # a request body waits for its backend connection and reached PENDING_BODY_LIMIT (Exchange)
PIPELINE = 4        # pipelined requests queued past PIPELINE_LIMIT (ClientConnection)
CLOSING = 8         # the connection closes once what is queued is answered: nothing more is read


class Flow:
    """The two directions between one client and its current backend (see the module docstring)."""

    __slots__ = ("backend", "backend_stops", "client", "client_stops")

    def __init__(self, client: ClientBase) -> None:
        self.client = client
        self.backend: BackendSide | None = None
        self.client_stops = 0       # reasons the client is not read (request bytes flow to the backend)
        self.backend_stops = 0      # reasons the backend is not read (response bytes flow to the client)

    # ---- the client's reading ----------------------------------------------------------------------------------

    def stop_client(self, reason: int) -> None:
        stops = self.client_stops
        if not stops & reason:
            self.client_stops = stops | reason
            if not stops:
                self.client.pause_reading()

    def go_client(self, reason: int) -> None:
        stops = self.client_stops
        if stops & reason:
            self.client_stops = stops & ~reason
            if not self.client_stops:
                self.client.resume_reading()

    # ---- the backend's reading ---------------------------------------------------------------------------------

    def stop_backend(self, reason: int) -> None:
        stops = self.backend_stops
        if not stops & reason:
            self.backend_stops = stops | reason
            if not stops and self.backend is not None:
                self.backend.pause_reading()

    def go_backend(self, reason: int) -> None:
        stops = self.backend_stops
        if stops & reason:
            self.backend_stops = stops & ~reason
            if not self.backend_stops and self.backend is not None:
                self.backend.resume_reading()

    # ---- the writers: each side's pause_writing / resume_writing -------------------------------------------------

    def client_write_full(self) -> None:
        self.stop_backend(WRITE_FULL)

    def client_write_drained(self) -> None:
        self.go_backend(WRITE_FULL)

    def backend_write_full(self, conn: BackendSide) -> None:
        """`conn` cannot take more of the request: stop reading the client, if `conn` is still this flow's."""
        if conn is self.backend:
            self.stop_client(WRITE_FULL)

    def backend_write_drained(self, conn: BackendSide) -> None:
        if conn is self.backend:
            self.go_client(WRITE_FULL)

    # ---- the backend joins and leaves ----------------------------------------------------------------------------

    def attach(self, conn: BackendSide) -> None:
        """`conn` serves this client now; it starts paused if the client cannot take more."""
        old = self.backend
        if old is not None and old is not conn:
            self.detach(old)
        self.backend = conn
        conn.flow = self
        if self.backend_stops:
            conn.pause_reading()

    def detach(self, conn: BackendSide) -> None:
        """`conn` no longer serves this client: it reads again, and what it held of the client is given back."""
        if conn is not self.backend:
            return
        self.backend = None
        conn.flow = None
        if self.backend_stops:
            conn.resume_reading()
        if self.client_stops:   # a C test first: a module constant is a Python object when compiled
            self.go_client(WRITE_FULL)

    def stopped(self) -> tuple[int, int]:
        """(client reasons, backend reasons) held now: for tests and debugging."""
        return self.client_stops, self.backend_stops
