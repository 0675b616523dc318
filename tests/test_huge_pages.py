"""The route table's heap on 2 MiB pages: which memory is chosen, that the kernel really backs it with huge
pages afterwards, and that the router's watcher runs a pass once the table has grown and settled."""

from __future__ import annotations

import asyncio
import ctypes
import mmap
import os

import pytest

from portico.config.loader import load_config
from portico.huge_pages import (
    HEAP,
    HUGE_PAGE,
    HeapCollapse,
    HugePages,
    _resident_counter,
    anonymous_ranges,
    dense_ranges,
)

MAPS = """\
55d0c6a00000-55d0c6e00000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000500000 rw-p 00000000 00:00 0
7f0000600000-7f0000700000 rw-p 00000000 00:00 0
7f1000000000-7f1000400000 r--p 00000000 08:01 1234                       /usr/lib/libc.so.6
7f2000000000-7f2000400000 rw-s 00000000 00:01 99                         /dev/zero (deleted)
7ffc00000000-7ffc00400000 rw-p 00000000 00:00 0                          [stack]
"""


def test_only_private_writable_anonymous_memory_in_whole_2mib_pieces_is_chosen():
    assert anonymous_ranges(MAPS) == [
        (0x55d0c6a00000, 0x400000),     # the brk heap, aligned already
        (0x7f0000000000, 0x400000),     # 5 MiB mapping: its two whole 2 MiB pieces
        # 1 MiB mapping: no whole piece; files, shared memory and the stack are never chosen
    ]


def _region(size: int) -> tuple[mmap.mmap, int]:
    """An anonymous private mapping of `size` bytes and its 2 MiB-aligned start inside it."""
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    address = ctypes.addressof(ctypes.c_char.from_buffer(region))
    return region, (address + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)


def _touch(region: mmap.mmap, offset: int, length: int) -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    for at in range(offset, offset + length, page):
        region[at] = 1


def test_only_ranges_whose_pages_are_nearly_all_resident_are_chosen():
    region, start = _region(5 * HUGE_PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    _touch(region, start - base, 2 * HUGE_PAGE)                       # two pieces wholly in memory
    _touch(region, start - base + 3 * HUGE_PAGE, HUGE_PAGE // 2)      # a third piece half in memory
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        chosen = dense_ranges([(start, 4 * HUGE_PAGE)], _resident_counter(fd))
    finally:
        os.close(fd)
    assert chosen == [(start, 2 * HUGE_PAGE)]                      # neighbours joined; sparse pieces left alone
    del base
    region.close()


def _anon_huge_kb(start: int) -> int:
    """AnonHugePages of the mapping that holds `start`, from /proc/self/smaps."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low <= start < high
            elif inside and head == "AnonHugePages:":
                return int(line.split()[1])
    return 0


def test_a_pass_backs_dense_memory_with_huge_pages():
    collapse = HeapCollapse()
    region, start = _region(4 * HUGE_PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    _touch(region, start - base, 2 * HUGE_PAGE)
    assert _anon_huge_kb(start) == 0
    done, seen = collapse.run()
    if not collapse.supported:
        pytest.skip("this kernel has no MADV_COLLAPSE (Linux 6.1+)")
    assert done >= 2 * HUGE_PAGE and seen >= done
    assert _anon_huge_kb(start) >= 2 * HUGE_PAGE // 1024
    assert region[start - base] == 1 and region[start - base + 4096] == 1   # the data is still there
    del base
    region.close()


def test_the_watcher_runs_a_pass_once_the_table_has_grown_and_settled():
    routes = [0]
    before = HEAP.passes

    async def scenario() -> None:
        pages = HugePages(lambda: routes[0], grow_step=100, check_every=0.01)
        pages.start()
        routes[0] = 50
        await asyncio.sleep(0.1)
        assert HEAP.passes == before                   # not grown by grow_step yet
        routes[0] = 5_000                              # grown; settles on the next look
        for _ in range(500):
            if HEAP.passes > before:
                break
            await asyncio.sleep(0.01)
        await pages.stop()

    asyncio.run(scenario())
    assert HEAP.passes == before + 1


def test_huge_pages_is_on_by_default_and_can_be_turned_off(tmp_path):
    on = tmp_path / "on.yml"
    on.write_text("port: 8081\n")
    off = tmp_path / "off.yml"
    off.write_text("port: 8081\nhuge_pages: false\n")
    assert load_config(on).huge_pages is True
    assert load_config(off).huge_pages is False
