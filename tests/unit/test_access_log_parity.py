"""The compiled access log writes each line field by field into its batch, pure Python formats it with one
%-template: both must give the same bytes for every kind of value (escapes, non-ASCII, missing times, carries,
large numbers, extra headers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portico._compiled import PURE_ENV, selection
from portico.observe.access_log import AccessLog

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
BASE = (b"app.example.com", b"GET", b"/p?q=1", b"HTTP/1.1", b"http://ref/", b"curl/8.0", b"10.0.0.1:5000",
        b"10.0.0.2:8080", b"1.2.3.4, 10.0.0.1", b"https", b"6a324819-2904-4b4d-8a01-e96a9bcbcbb0", b"app-guid",
        b"3", b"inst", b"")
# (start time, status, request bytes, response bytes, response time, gorouter time, replaced fields)
CASES: list[tuple] = [
    (1624460842.980439, 200, 0, 615, 0.000312, 0.000101, {}),
    (1624460842.0, 0, 0, 0, None, None, {}),
    (1624492799.9999997, 404, 12, 0, -1.0, 0.0, {14: b"unknown_route"}),
    (1624460842.5, 502, 10 ** 12, 2 ** 62, 3601.9999996, 1e-7, {14: b"endpoint_failure (EOF)"}),
    (1624460842.25, 200, 1, 2, 0.5, 0.25, {5: b'evil "agent"\nfake', 4: b"back\\slash", 2: b"/tab\there"}),
    (1624460842.25, 200, 1, 2, 0.5, 0.25, {5: "caf\u00e9 \u2603".encode(), 0: b"\xff\xfebad", 8: b"\x7f\x00"}),
    (1624460842.25, 200, 1, 2, 0.5, 0.25, {i: b"" for i in range(15)}),
    (1624460842.25, 200, 1, 2, 0.5, 0.25, {15: b"span", 16: b"", 17: b'q"uote'}),
]

# Each byte that needs escaping (and its printable neighbours) at every place of a 1- to 3-word value: the
# compiled writer tests eight bytes at a time, so the byte is in the first word, a later one, or the tail.
WORD_CASES: list[tuple] = [(1624460842.25, 200, 1, 2, 0.5, 0.25, {5: b"a" * k + ch + b"b" * (19 - k)})
          for ch in (b'"', b"\\", b"\x00", b"\x1f", b" ", b"!", b"~", b"\x7f", b"\x80", b"\xff", b"\xc3\xa9")
          for k in range(20)]

# write_line, as ExchangeObserver calls it: the endpoint's address and ids and the router error as str (plain
# ASCII, non-ASCII, a quote and a control character, empty), extra values short of the extra headers.
STR_CASES: list[tuple] = [
    ("10.0.0.2:8080", "app-guid", "3", "inst", "", (b"span",)),
    ("10.0.0.2:8080", "caf\u00e9", "\u2603", 'in"st\x01', "endpoint_failure (EOF)", ()),
    ("", "", "", "", "unknown_route", None),
]
WORD_STR_CASES = [("10.0.0.2:8080", "x" * k + "\u00e9" + "y" * (17 - k), "3", "i" * k + '"', "", ()) for k in range(18)]


def lines(path: Path) -> list[bytes]:
    """Every case written by this process's AccessLog, with three extra logged headers."""
    log = AccessLog(str(path), extra_headers=("Span-Id", "X-B3-TraceId", "True-Client-IP"))
    for start, status, sent, received, rt, gt, replaced in CASES:
        fields = [*BASE, b"", b"", b""]
        for i, value in replaced.items():
            fields[i] = value
        short = tuple(fields[:15]) if 15 not in replaced else tuple(fields)   # fewer fields: padded with "-"
        log.log(start, status, sent, received, rt, gt, short)
    for backend, app_id, app_index, instance_id, error, extra in STR_CASES + WORD_STR_CASES:
        log.write_line(1624460842.25, 200, 1, 2, 0.5, -1.0, *BASE[:7], backend, *BASE[8:11], app_id, app_index,
                       instance_id, error, extra)
    for start, status, sent, received, rt, gt, replaced in WORD_CASES:   # after the lines tests read by place
        log.log(start, status, sent, received, rt, gt, (*BASE[:5], replaced[5], *BASE[6:]))
    log.close()
    return path.read_bytes().splitlines(keepends=True)


def test_the_compiled_and_pure_lines_are_the_same_bytes(tmp_path):
    if not selection().compiled:
        pytest.skip(f"nothing compiled to compare: {selection().reason}")
    here = lines(tmp_path / "compiled.log")
    code = ("import sys; from pathlib import Path; from tests.unit.test_access_log_parity import lines; "
            "sys.stdout.write(''.join(l.hex() + '\\n' for l in lines(Path(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "pure.log")], cwd=REPO,
                         env={**os.environ, PURE_ENV: "1"}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    pure = [bytes.fromhex(h) for h in out.stdout.split()]
    assert len(here) == len(CASES) + len(STR_CASES) + len(WORD_STR_CASES) + len(WORD_CASES) == len(pure)
    for mine, reference in zip(here, pure, strict=True):
        assert mine == reference


def test_the_tricky_lines_read_as_gorouter_writes_them(tmp_path):
    got = lines(tmp_path / "access.log")
    assert b"response_time:- gorouter_time:- " in got[1] and b" 0 0 0 " in got[1]
    assert b"[2021-06-24T00:00:00.000000000Z]" in got[2] and b"response_time:- gorouter_time:0.000000 " in got[2]
    assert b" 502 1000000000000 4611686018427387904 " in got[3]
    assert b"response_time:3602.000000 gorouter_time:0.000000 " in got[3]
    assert b'"evil \\"agent\\"\\nfake"' in got[4] and b'"back\\\\slash"' in got[4] and b"/tab\\there" in got[4]
    assert "\"caf\u00e9 \u2603\"".encode() in got[5] and b'x_forwarded_for:"\\x7f\\x00"' in got[5]
    assert got[6].startswith(b'- - [') and b'"- - -" 200 1 2 "-" "-" "-" "-" x_forwarded_for:"-"' in got[6]
    assert got[7].endswith(b'span_id:"span" x_b3_traceid:"-" true_client_ip:"q\\"uote"\n')
    assert (b'"10.0.0.2:8080" x_forwarded_for:' in got[8] and b'gorouter_time:- app_id:"app-guid" app_index:"3" '
            b'instance_id:"inst" x_cf_routererror:"-" span_id:"span" x_b3_traceid:"-" true_client_ip:"-"\n' in got[8])
    assert 'app_id:"caf\u00e9" app_index:"\u2603" instance_id:"in\\"st\\x01"'.encode() in got[9]
    assert b'"-" x_forwarded_for:' in got[10]
    assert b'app_id:"-" app_index:"-" instance_id:"-" x_cf_routererror:"unknown_route"' in got[10]
