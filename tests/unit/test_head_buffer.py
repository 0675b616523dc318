"""The forwarded request head's buffer (portico.proxy.head_buffer): pieces written in order come out as one
bytes, the buffer grows for a big head and is empty after each take; run on the compiled build and on pure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portico._compiled import PURE_ENV
from portico.proxy.forwarded_lines import ForwardedLines
from portico.proxy.head_buffer import FIRST_BYTES, KEEP_BYTES, HeadBuffer, joined, joined3

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_pieces_and_fields_come_out_as_one_bytes_in_order() -> None:
    head = HeadBuffer()
    head.start()
    for piece in (b"GET", b" ", b"/a?b=1", b" HTTP/1.1\r\n"):
        head.put(piece)
    head.put_field(b"Host", b"app.example")
    head.put_field(b"X-Empty", b"")
    head.put(b"")
    head.put(b"\r\n")
    got = head.take()
    assert type(got) is bytes
    assert got == b"GET /a?b=1 HTTP/1.1\r\nHost: app.example\r\nX-Empty: \r\n\r\n"
    assert head.take() == b""      # empty after a take


def test_start_forgets_a_head_abandoned_half_way() -> None:
    head = HeadBuffer()
    head.put(b"half of a head")
    head.start()
    head.put_field(b"A", b"1")
    assert head.take() == b"A: 1\r\n"


@pytest.mark.parametrize("size", [7, 8, 9, FIRST_BYTES - 1, FIRST_BYTES, FIRST_BYTES + 1, 3 * FIRST_BYTES + 5,
                                  KEEP_BYTES + 1])
def test_a_head_past_the_buffer_grows_it_and_keeps_every_byte(size: int) -> None:
    head = HeadBuffer()
    value = bytes(range(33, 127)) * (size // 94 + 1)
    value = value[:size]
    head.put(b"x")
    head.put_field(b"Big", value)
    head.put(value)
    assert head.take() == b"x" + b"Big: " + value + b"\r\n" + value
    head.put(b"next")                  # reused (or given back and made afresh) after a big one
    assert head.take() == b"next"


def test_joined3_is_the_concatenation() -> None:
    assert joined3(b"GET / HTTP/1.1\r\n", b"X-CF-ApplicationID: a\r\n", b"\r\n") == \
        b"GET / HTTP/1.1\r\nX-CF-ApplicationID: a\r\n\r\n"
    assert joined3(b"", b"", b"") == b""
    big = b"z" * (FIRST_BYTES * 2)
    assert joined3(big, b"-", big) == big + b"-" + big


@pytest.mark.parametrize("sizes", [(), (0,), (5, 0, 7), (100, 3000), (FIRST_BYTES, 1), (1 << 20, 10), (9,) * 50])
def test_joined_is_the_join(sizes: tuple[int, ...]) -> None:
    pieces = [bytes([65 + i % 26]) * n for i, n in enumerate(sizes)]
    got = joined(pieces)
    assert type(got) is bytes and got == b"".join(pieces)
    assert joined([b"after", b" a big one"]) == b"after a big one"


@pytest.mark.parametrize("walls", [(1700000000.0, 1700000000.0004, 1700000000.9995, 1700000001.001, 1699999999.5),
                                   (1000.0, 1000.001, 1002.5, 1002.5, 999.9999)])
def test_the_request_start_line_written_into_a_head_is_the_one_made_as_bytes(walls: tuple[float, ...]) -> None:
    """ForwardedLines.put_request_start (the compiled router's) and request_start (pure Python's), mixed on one
    ForwardedLines in any order, write the same line for each time."""
    lines, other = ForwardedLines(), ForwardedLines()
    head = HeadBuffer()
    for wall in walls:
        lines.put_request_start(head, wall)
        written = head.take()
        assert written == lines.request_start(wall) == other.request_start(wall)
        assert written == b"\r\nX-Request-Start: %d\r\n" % int(wall * 1000)


def test_the_same_in_pure_python() -> None:
    """This file's tests again with the pure module (the compiled one is what ran above when built)."""
    env = {**os.environ, PURE_ENV: "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                           "-k", "not pure_python"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
