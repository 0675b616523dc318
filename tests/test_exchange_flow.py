"""Flow control of a request body that arrives before the backend connection is ready.

Reading from the client must pause exactly once when the pending body reaches its bound, and resume exactly
once when the body is sent or the exchange ends, so a large upload never stalls the connection for good.
"""

from portico.proxy.client_base import ClientBase
from portico.proxy.exchange import PENDING_BODY_LIMIT, Exchange
from portico.proxy.flow import Flow
from portico.proxy.upstream import UpstreamConnection


class RecordingClient(ClientBase):
    def __init__(self):
        self.ctx = None
        self.flow = Flow(self)
        self.paused = 0
        self.pauses = 0
        self.finished = []

    def pause_reading(self):
        self.paused += 1
        self.pauses += 1

    def resume_reading(self):
        self.paused -= 1

    def write(self, data):
        pass

    def exchange_finished(self, ex, aborted=False):
        self.finished.append(ex)


class RecordingTransport:
    def __init__(self):
        self.data = []

    def write(self, data):
        self.data.append(data)


def recording_upstream() -> UpstreamConnection:
    """A real HTTP/1.1 backend connection whose socket is a recording transport."""
    conn = UpstreamConnection(connector=None, address="10.0.0.1:80")
    conn.connection_made(RecordingTransport())
    return conn


class FakeEndpoint:
    cf_headers = b"X-CF-InstanceID: 1.2.3.4:5\r\n"


def exchange_with_pending_body(client, chunks):
    ex = Exchange(client, b"POST", b"/upload")
    ex.head = b"POST /upload HTTP/1.1\r\nHost: a\r\n"
    ex.has_body = True
    for chunk in chunks:
        ex.request_body(chunk)
    return ex


def test_pending_body_pauses_once_and_attach_resumes_once():
    client = RecordingClient()
    chunk = b"x" * 65536
    count = PENDING_BODY_LIMIT // len(chunk) + 4
    ex = exchange_with_pending_body(client, [chunk] * count)
    assert client.pauses == 1 and client.paused == 1
    ex.endpoint = FakeEndpoint()
    upstream = recording_upstream()
    ex._attach(upstream)
    assert client.paused == 0
    sent = b"".join(upstream.transport.data)
    assert sent.endswith(chunk) and sent.count(chunk) == count  # every pending byte went to the backend


def test_an_exchange_that_ends_before_sending_its_body_resumes_reading():
    client = RecordingClient()
    chunk = b"y" * 65536
    ex = exchange_with_pending_body(client, [chunk] * (PENDING_BODY_LIMIT // len(chunk) + 2))
    assert client.paused == 1
    ex.finish()
    assert client.paused == 0 and ex.pending is None
    ex.request_body(chunk)  # the rest of the body is read and dropped
    assert client.paused == 0


def test_an_empty_body_chunk_never_ends_a_chunked_request_early():
    """HTTP/2 clients often send END_STREAM on an empty DATA frame; chunked, it would read as the last chunk."""
    upstream = recording_upstream()
    upstream.send_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", True, [b"ab", b""], False)
    upstream.send_body(b"")
    upstream.send_body(b"cd")
    upstream.end_body([(b"X-Sum", b"1")])
    sent = b"".join(upstream.transport.data)
    assert sent.endswith(b"\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\nX-Sum: 1\r\n\r\n"), sent
