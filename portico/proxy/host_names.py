# cython: annotation_typing=False
"""Host header value -> the route table's host name (lower case, no port), for the request router.

Kept apart from routing.py because it is the one per-request step whose cost grows with the number of
distinct hosts. The first HOST_CACHE_SIZE values are remembered (the busy ones come first and the cache never
churns). Compiled, a value not remembered takes one C pass over its bytes when it is the usual kind (printable
ASCII, no upper case, an optional `:port`); anything else takes the general rule. With more hosts than the
cache holds, asking it can cost more than it saves (callgrind, compiled: a hit saves ~370 instructions against
normalising afresh, a miss costs ~760 more, its bytes hashed for nothing), so once full it is asked only while
at least 2 in 3 answers are hits; otherwise 1 lookup in SAMPLE_EVERY asks it, to notice when that changes.
"""

from __future__ import annotations

from types import SimpleNamespace

from portico.routes.uri import host_without_port

try:
    import cython
except ImportError:   # no Cython installed: certainly the pure module
    cython = SimpleNamespace(compiled=False)

HOST_CACHE_SIZE = 4096
JUDGED_EVERY = 1024   # cache answers per verdict on whether asking it pays (once it is full)
SAMPLE_EVERY = 64     # while it does not pay, 1 lookup in this many still asks it
# Each byte's kind for normalise_host's pass: 0 stays as it is in a name, _COLON may start the port, and
# _OTHER (space or control, non-ASCII, `[`, upper case) needs the general rule.
_COLON = 1
_OTHER = 2
_BYTE_KINDS = bytes(_COLON if b == 58 else _OTHER if b <= 32 or b >= 127 or b == 91 or 65 <= b <= 90 else 0
                    for b in range(256))


class HostNames:
    """Normalises Host values as a route table keys them; remembers the first HOST_CACHE_SIZE it sees."""

    def __init__(self) -> None:
        self._names: dict[bytes, str] = {}
        self._full = False
        self.sampling = False   # the cache is full and missing: asked 1 lookup in SAMPLE_EVERY
        self._skip = 0          # while sampling: lookups left before the cache is asked again
        self._asked = 0         # cache answers since the last verdict (once full)
        self._hits = 0

    def name(self, host: bytes) -> str:
        """`host` (a Host header or an absolute-form target's host) as the table's key; "" when it names none."""
        if self._skip:
            self._skip -= 1
            return normalise_host(host)
        name = self._names.get(host)
        if not self._full:
            if name is None:
                name = normalise_host(host)
                self._names[host] = name
                self._full = len(self._names) >= HOST_CACHE_SIZE
            return name
        if name is None:
            name = normalise_host(host)
        else:
            self._hits += 1
        self._asked += 1
        if self._asked == JUDGED_EVERY:
            self.sampling = self._hits * 3 < JUDGED_EVERY * 2
            self._asked = self._hits = 0
        if self.sampling:
            self._skip = SAMPLE_EVERY - 1
        return name


def normalise_host(host: bytes) -> str:
    """Lower case, `:port` and surrounding whitespace dropped, IPv6 literals kept whole (`[::1]`)."""
    if not cython.compiled:   # interpreted, the general rule is the cheaper (Cython drops this branch)
        return _general(host)
    # The usual Host is printable ASCII without upper case, `[` or a second `:`. The general rule then changes
    # nothing but cutting at the colon, so the name is those bytes as they are: one pass, one str made.
    p = host           # compiled: the bytes' own buffer (host_names.pxd)
    kinds = _BYTE_KINDS
    n = len(host)
    end = n
    i = 0
    while i < n:
        kind = kinds[p[i]]
        if kind:
            if kind != _COLON or end != n:   # the general rule cuts at the last colon: only one is plain
                return _general(host)
            end = i
        i += 1
    return host[:end].decode("ascii")


def _general(host: bytes) -> str:
    return host_without_port(host.decode("latin-1")).strip().lower() if host else ""
