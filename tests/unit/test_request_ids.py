"""X-Vcap-Request-Id: version 4 UUIDs from a pool filled in bulk from os.urandom; a forked child never
repeats its parent's ids."""

from __future__ import annotations

import os
import re
import uuid

import pytest

from portico.proxy.headers import IDS_PER_REFILL, request_id

pytestmark = pytest.mark.unit
UUID4 = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")


def test_ids_across_several_refills_are_distinct_rfc_4122_version_4():
    ids = [request_id() for _ in range(IDS_PER_REFILL * 3 + 7)]
    assert len(set(ids)) == len(ids)
    for rid in ids:
        parsed = uuid.UUID(rid.decode())
        assert UUID4.match(rid) and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed).encode() == rid


def test_every_random_digit_varies():
    """Each of the 30 random hex positions takes many values (a copy from the wrong column would not)."""
    ids = [request_id().replace(b"-", b"") for _ in range(2000)]
    for position in range(32):
        seen = {rid[position] for rid in ids}
        if position == 12:
            assert seen == {ord("4")}
        elif position == 16:
            assert seen == set(b"89ab")
        else:
            assert len(seen) == 16, (position, seen)


def test_a_forked_child_does_not_repeat_the_parents_ids():
    request_id()   # the pool is filled before the fork
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: send its next ids and leave at once
        try:
            os.write(write_end, b"".join(request_id() for _ in range(10)))
        finally:
            os._exit(0)
    os.close(write_end)
    child = b""
    while len(child) < 360:
        chunk = os.read(read_end, 4096)
        if not chunk:
            break
        child += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    parent = b"".join(request_id() for _ in range(10))
    assert len(child) == 360
    assert {child[i:i + 36] for i in range(0, 360, 36)}.isdisjoint({parent[i:i + 36] for i in range(0, 360, 36)})
