"""An endpoint's two ids kept as one block: canonical lower-case GUIDs packed, anything else kept exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from portico._compiled import PURE_ENV, selection
from portico.routes import guids
from portico.routes.endpoint import Endpoint, make_endpoint, new_endpoint

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
APP = "6f1a2c3e-0000-4000-8000-00000000000a"
INSTANCE = "b1c2d3e4-09af-4000-8000-0000000000f2"
SHORT = "5a6b7c8d-0e1f-1a2b-3c4d-5e6f"       # Diego's short instance GUID: 8-4-4-4-4

# (app id, instance id, what the block is): bytes of that length, or "tuple" (the strings kept as they are)
CASES = [
    ("", "", 0),
    (APP, INSTANCE, 33),
    (APP, SHORT, 29),
    (SHORT, SHORT, 25),
    (APP, "", 17),
    ("", INSTANCE, 17),
    ("", SHORT, 13),
    (APP.upper(), INSTANCE, "tuple"),                        # upper case is not canonical: kept as sent
    (APP, INSTANCE[:-1] + "g", "tuple"),
    ("app1", "", "tuple"),
    ("", "inst-1", "tuple"),
    (APP.replace("-", ""), INSTANCE, "tuple"),               # 32 hex digits, no dashes
    (APP[:8] + "+" + APP[9:], INSTANCE, "tuple"),             # a dash in the wrong place
    ("6f1a2c3e-0000-4000-8000-00000000000\u0661", INSTANCE, "tuple"),  # a non-ASCII digit
    (" " + APP[1:], INSTANCE, "tuple"),
    (APP + "0", INSTANCE, "tuple"),
    ("caf\u00e9", "snow\u2603man", "tuple"),
    ("app\r\nEvil: 1", "x\ry", "tuple"),
]


@pytest.mark.parametrize(("app_id", "instance_id", "kept"), CASES)
def test_the_ids_come_back_exactly_as_registered(app_id: str, instance_id: str, kept: int | str) -> None:
    block = guids.pack(app_id, instance_id)
    if kept == "tuple":
        assert block == (app_id, instance_id)
    else:
        assert type(block) is bytes and len(block) == kept
    assert guids.app_id_of(block) == app_id
    assert guids.instance_id_of(block) == instance_id
    assert guids.has_instance_id(block) is bool(instance_id)
    ep = make_endpoint("10.0.0.1", 80, app_id=app_id, private_instance_id=instance_id, private_instance_index="0")
    assert (ep.app_id, ep.private_instance_id) == (app_id, instance_id)
    assert ep.guids == block
    built = new_endpoint("10.0.0.1", 80, False, app_id, instance_id, "0", "", "", None, 120.0, "", "http1", "", "",
                         0.0, 0)
    assert built.guids == block and built.same_registration(ep)


def test_random_uuids_round_trip_and_pack_to_one_small_object() -> None:
    for _ in range(2000):
        app, instance = str(uuid.uuid4()), str(uuid.uuid4())
        block = guids.pack(app, instance)
        assert type(block) is bytes and len(block) == 33
        assert (guids.app_id_of(block), guids.instance_id_of(block)) == (app, instance)
    # 80 B in pymalloc (a 33-B bytes object), against two 36-char strings of 85 B each
    assert sys.getsizeof(guids.pack(APP, INSTANCE)) <= 80 < 2 * sys.getsizeof(APP)


def test_an_empty_pair_costs_nothing() -> None:
    assert guids.pack("", "") == b"" and len(guids.pack("", "")) == 0
    assert Endpoint("10.0.0.1", 80).guids == b""


@pytest.mark.parametrize(("app_id", "instance_id", "index"), [
    (APP, INSTANCE, "0"), (APP, SHORT, "12"), ("", "", ""), (APP, "", "3"), ("", SHORT, "1"),
    (APP, INSTANCE, "caf\u00e9"), (APP, INSTANCE, "1\r\nX: y"), ("app1", INSTANCE, "2"),
])
def test_the_cf_block_is_the_registered_text(app_id: str, instance_id: str, index: str) -> None:
    """Compiled, a packed block is written as hex straight into the X-CF-* lines; the text is the same."""
    ep = make_endpoint("10.0.0.9", 8080, app_id=app_id, private_instance_id=instance_id,
                       private_instance_index=index)
    safe_index = index.replace("\r", " ").replace("\n", " ")
    expected = (f"X-CF-ApplicationID: {app_id}\r\nX-CF-InstanceIndex: {safe_index}\r\n"
                f"X-CF-InstanceID: {instance_id or '10.0.0.9:8080'}\r\n").encode("latin-1", "replace")
    assert ep.cf_headers == expected


def test_compiled_and_pure_read_the_same_text() -> None:
    if not selection().compiled:
        pytest.skip(f"nothing compiled to compare: {selection().reason}")
    script = ("from tests.unit.test_guids import CASES, texts\n"
              "for line in texts(CASES): print(line)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env={**os.environ, PURE_ENV: "1"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:-1] == texts(CASES)


def texts(cases: list) -> list[str]:
    """What each case's readers give, as one line each (compared between the compiled and the pure module)."""
    lines = []
    for app_id, instance_id, _ in cases:
        block = guids.pack(app_id, instance_id)
        ep = make_endpoint("10.0.0.9", 8080, app_id=app_id, private_instance_id=instance_id,
                           private_instance_index="7")
        lines.append(repr((block, guids.app_id_of(block), guids.instance_id_of(block), ep.cf_headers,
                           ep.to_json())))
    return lines
