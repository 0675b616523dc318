"""A small blocking HTTP/2 client over a real socket, driven by the h2 library (client side), for the tests.

It can open several streams before reading (multiplexing), hold back WINDOW_UPDATEs (a slow reader), send
request trailers, and send raw frames or header blocks the h2 library itself would refuse to send.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.settings


class _ClientConnection(h2.connection.H2Connection):
    """h2's client connection, except that the server's GOAWAY leaves it able to receive the answers to the
    streams the GOAWAY lets finish (h2 itself refuses every frame after a GOAWAY)."""

    def _receive_goaway_frame(self, frame):
        event = h2.events.ConnectionTerminated()
        event.error_code = frame.error_code
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


@dataclass
class H2Response:
    status: int = 0
    headers: list = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list = field(default_factory=list)
    ended: bool = False
    reset: int | None = None      # RST_STREAM error code, when the server reset the stream
    informational: list = field(default_factory=list)
    data_frames: int = 0          # DATA frames received (END_STREAM rides on the last one when it can)

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.decode().lower() == name.lower():
                return v.decode()
        return None


class H2Client:
    def __init__(self, port: int, *, ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None,
                 preamble: bytes = b"", auto_ack: bool = True, window: int | None = None,
                 validate: bool = True) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if preamble:
            sock.sendall(preamble)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or "localhost")
        self.sock = sock
        config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                           validate_outbound_headers=validate, normalize_outbound_headers=validate)
        self.conn = _ClientConnection(config)
        if window is not None:
            self.conn.local_settings = h2.settings.Settings(
                client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.conn.initiate_connection()
        self.auto_ack = auto_ack
        self.responses: dict[int, H2Response] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self.remote_settings_seen = False
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method: str, path: str, authority: str, headers=(), body: bytes | None = None,
                trailers=None, end: bool = True, scheme: str = "http") -> int:
        sid = self.conn.get_next_available_stream_id()
        fields = [(b":method", method.encode()), (b":scheme", scheme.encode()), (b":authority", authority.encode()),
                  (b":path", path.encode())]
        fields += [(k.encode() if isinstance(k, str) else k, v.encode() if isinstance(v, str) else v)
                   for k, v in headers]
        ends_now = end and body is None and trailers is None
        self.conn.send_headers(sid, fields, end_stream=ends_now)
        self.responses[sid] = H2Response()
        if body is not None:
            self.send_body(sid, body, end=end and trailers is None)
        if trailers is not None:
            self.conn.send_headers(sid, [(k.encode(), v.encode()) for k, v in trailers], end_stream=True)
        self._flush()
        return sid

    def send_body(self, sid: int, body: bytes, end: bool = False) -> None:
        """Send body bytes as the windows allow (reading in between), then END_STREAM when asked."""
        sent = 0
        while sent < len(body):
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room <= 0:
                self.read_once(5)
                continue
            self.conn.send_data(sid, body[sent:sent + room])
            sent += room
            self._flush()
        if end:
            self.conn.end_stream(sid)
        self._flush()

    def read_once(self, timeout: float = 10.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            self._on(event)
        self._flush()
        return True

    def _on(self, event) -> None:
        r = self.responses.get(getattr(event, "stream_id", 0) or 0)
        if isinstance(event, h2.events.ResponseReceived):
            r.status = int(dict(event.headers)[b":status"])
            r.headers = [(k, v) for k, v in event.headers if not k.startswith(b":")]
        elif isinstance(event, h2.events.InformationalResponseReceived):
            r.informational.append(int(dict(event.headers)[b":status"]))
        elif isinstance(event, h2.events.DataReceived):
            r.body += event.data
            r.data_frames += 1
            if self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            r.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            r.ended = True
        elif isinstance(event, h2.events.StreamReset):
            if r is not None:
                r.reset = event.error_code
                r.ended = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.remote_settings_seen = True

    def wait(self, sid: int, timeout: float = 15.0) -> H2Response:
        deadline = time.monotonic() + timeout
        r = self.responses[sid]
        while not r.ended and time.monotonic() < deadline and not self.closed:
            self.read_once(max(0.05, deadline - time.monotonic()))
        assert r.ended, f"stream {sid} did not end within {timeout}s (closed={self.closed}, got {r})"
        return r

    def get(self, path: str, authority: str, headers=(), timeout: float = 15.0) -> H2Response:
        return self.wait(self.request("GET", path, authority, headers), timeout)

    def ack(self, sid: int, size: int) -> None:
        self.conn.acknowledge_received_data(size, sid)
        self._flush()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
