"""The compiled per-request path against its pure-Python reference: same bytes out, same defaults, and the
request id's shape (a version 4 UUID, formatted without a uuid.UUID object)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from portico._compiled import PURE_ENV, selection
from portico.proxy import exchange_state
from portico.proxy.client_base import ClientBase
from portico.proxy.exchange import Exchange
from portico.proxy.exchange_state import DEFAULTS
from portico.proxy.headers import request_id
from tests.unit.hot_path_corpus import run_corpus

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
UUID4 = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")


def test_request_ids_are_distinct_version_4_uuids():
    ids = [request_id() for _ in range(5000)]
    assert all(type(i) is bytes and UUID4.match(i) for i in ids), [i for i in ids if not UUID4.match(i)][:3]
    assert len(set(ids)) == len(ids)


async def test_a_new_exchange_has_every_default():
    class Client(ClientBase):
        ctx = None    # a typed ProxyContext slot when compiled: None or the real thing

    ex = Exchange(Client(), b"GET", b"/")   # type: ignore[arg-type]
    assert (ex.method, ex.uri, ex.is_head) == (b"GET", b"/", False)
    for name, value in DEFAULTS.items():
        got = getattr(ex, name)
        assert got == value and type(got) is type(value), (name, got, value)
    # every field the class declares (read from the source: a compiled class keeps no annotations)
    tree = ast.parse((Path(exchange_state.__file__).parent / "exchange_state.py").read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ExchangeState"]
    declared = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    assert declared - {"client", "ctx", "method", "uri", "is_head"} == set(DEFAULTS)


async def test_compiled_and_pure_write_the_same_bytes(tmp_path):
    """The corpus (requests forwarded, responses rewritten, access log lines) here and in pure Python."""
    if not selection().compiled:
        pytest.skip(f"nothing compiled to compare: {selection().reason}")
    here = await run_corpus(tmp_path / "access.log")
    env = {**os.environ, PURE_ENV: "1"}
    out = subprocess.run([sys.executable, "-m", "tests.unit.hot_path_corpus"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    pure = [bytes.fromhex(line) for line in out.stdout.split()]
    assert len(pure) == len(here)
    for mine, reference in zip(here, pure, strict=True):
        assert mine == reference
