"""The route feed's MSG frame cutter (portico/bus/frames.py: FrameParser), on its own: no socket, no server.

A unit test (tests/unit/), so it runs against the compiled FrameParser in the default run and against the pure
one in test_compiled_build's pure pass: both must cut every stream, split anywhere, into the same payloads."""

from __future__ import annotations

import itertools
import json

import pytest

from portico.bus.frames import FrameParser, ProtocolError


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self.parser = FrameParser(lambda p: self.events.append(("reg", p)),
                                  lambda p: self.events.append(("unreg", p)),
                                  lambda line: self.events.append(("ctl", line)))


def msg(subject: str, sid: int, payload: bytes, reply: str = "") -> bytes:
    reply_part = f" {reply}" if reply else ""
    return f"MSG {subject} {sid}{reply_part} {len(payload)}\r\n".encode() + payload + b"\r\n"


def hmsg(subject: str, sid: int, headers: bytes, payload: bytes) -> bytes:
    return (f"HMSG {subject} {sid} {len(headers)} {len(headers) + len(payload)}\r\n".encode()
            + headers + payload + b"\r\n")


STREAM = b"".join([
    b'INFO {"server_id":"x","max_payload":1048576}\r\n',
    msg("router.register", 1, b'{"host":"10.0.0.1","port":80,"uris":["a.com"]}'),
    b"PING\r\n",
    msg("router.unregister", 2, b'{"host":"10.0.0.1","port":80,"uris":["a.com"]}'),
    msg("router.register", 1, b""),                       # empty payload
    msg("router.register", 1, b"x\r\ny MSG PING\r\n", reply="_INBOX.1"),  # CRLF inside a payload
    b"+OK\r\n",
    hmsg("router.register", 1, b"NATS/1.0\r\nA: b\r\n\r\n", b'{"host":"h","uris":["b.com"]}'),
    msg("router.other", 3, b"ignored"),
    b"PONG\r\n",
    msg("router.unregister", 2, b"z" * 300),
])

EXPECTED = [
    ("ctl", b'INFO {"server_id":"x","max_payload":1048576}'),
    ("reg", b'{"host":"10.0.0.1","port":80,"uris":["a.com"]}'),
    ("ctl", b"PING"),
    ("unreg", b'{"host":"10.0.0.1","port":80,"uris":["a.com"]}'),
    ("reg", b""),
    ("reg", b"x\r\ny MSG PING\r\n"),
    ("ctl", b"+OK"),
    ("reg", b'{"host":"h","uris":["b.com"]}'),
    ("ctl", b"PONG"),
    ("unreg", b"z" * 300),
]


def test_parser_whole_stream():
    rec = Recorder()
    rec.parser.feed(STREAM)
    assert rec.events == EXPECTED


def test_parser_stream_split_at_every_position():
    for cut in range(1, len(STREAM)):
        rec = Recorder()
        rec.parser.feed(STREAM[:cut])
        rec.parser.feed(STREAM[cut:])
        assert rec.events == EXPECTED, cut


def test_parser_stream_split_in_three_everywhere_and_byte_by_byte():
    step = 7
    for a in range(1, len(STREAM), step):
        for b in range(a, len(STREAM), step):
            rec = Recorder()
            for part in (STREAM[:a], STREAM[a:b], STREAM[b:]):
                rec.parser.feed(part)
            assert rec.events == EXPECTED, (a, b)
    rec = Recorder()
    for i in range(len(STREAM)):
        rec.parser.feed(STREAM[i:i + 1])
    assert rec.events == EXPECTED


def test_parser_large_payload_in_many_reads():
    payload = json.dumps({"host": "h", "uris": ["big.com"], "tags": {"k": "v" * 500_000}}).encode()
    data = msg("router.register", 1, payload) + b"PING\r\n"
    rec = Recorder()
    for i in range(0, len(data), 65536):
        rec.parser.feed(data[i:i + 65536])
    assert rec.events == [("reg", payload), ("ctl", b"PING")]


def test_parser_rejects_garbage():
    with pytest.raises(ProtocolError):
        Recorder().parser.feed(b"MSG router.register 1 notanumber\r\n")
    with pytest.raises(ProtocolError):
        Recorder().parser.feed(b"x" * 70_000)


@pytest.mark.parametrize("frame", [
    b"MSG router.register 1 \r\n",                  # no size
    b"MSG router.register 1 5x\r\n",                # not a number
    b"MSG router.register 1x5\r\n",                 # the size not a field of its own
    b"MSG router.register 1 1234567890123\r\n",     # 13 digits: no NATS payload is that big
])
def test_parser_rejects_a_bad_size_field(frame):
    with pytest.raises(ProtocolError, match="bad frame header"):
        Recorder().parser.feed(frame + b"{}\r\n")


def test_parser_reads_sizes_of_every_width():
    for size in (0, 7, 10, 99, 100, 65_536, 1_000_000):
        payload = b"x" * size
        rec = Recorder()
        rec.parser.feed(msg("router.register", 1, payload) + msg("router.unregister", 2, b"u", reply="inbox.1"))
        assert rec.events == [("reg", payload), ("unreg", b"u")]


def test_parser_reads_that_end_inside_frames_of_every_kind():
    """A read that ends inside a frame is joined with only the start of the next one: the payloads are the same
    whether the unfinished frame's header was whole (its size known) or cut, and when the rest is longer than the
    join's room (a 10 KB payload after a cut header)."""
    payloads = [b'{"host":"10.0.0.%d","uris":["r%d.com"]}' % (i % 250, i) for i in range(3000)]
    payloads[1000] = b"y" * 10_000
    payloads[2000] = b"z" * 70_000
    frames = [msg("router.register", 1, p) for p in payloads]
    stream = b"".join(frames) + b"PING\r\n"
    big = stream.index(b"y" * 10_000)
    huge = stream.index(b"z" * 70_000)
    expected = [("reg", p) for p in payloads] + [("ctl", b"PING")]
    for cuts in ([big - 5], [big - 30], [big + 3], [huge - 3, huge + 40_000], list(range(4096, len(stream), 4096)),
                 list(range(65536, len(stream), 65536)), list(range(1000, len(stream), 65521))):
        rec = Recorder()
        bounds = [0, *cuts, len(stream)]
        for a, b in itertools.pairwise(bounds):
            rec.parser.feed(stream[a:b])
        assert rec.events == expected, cuts[:3]
