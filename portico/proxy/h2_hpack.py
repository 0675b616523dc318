"""A response-header encoder for HTTP/2 clients that does the cheap half of HPACK only.

The hpack library's Encoder searches and grows a dynamic table and Huffman-codes every string, in Python: it
was ~13% of the router's CPU per HTTP/2 request (py-spy, h2load -c10 -m10). Responses here are mostly fields
that change per request (X-Vcap-Request-Id, Content-Length, Date...), so the dynamic table buys little. This
encoder uses the static table only (RFC 7541 Appendix A, taken from the hpack library) and sends every other
field as a literal without indexing and without Huffman coding: valid HPACK that any decoder reads, a few
bytes larger on the wire, several times cheaper to make. Decoding (requests) stays with the hpack library.
"""

from __future__ import annotations

from hpack.table import HeaderTable

_FULL: dict[tuple[bytes, bytes], bytes] = {}     # (name, value) in the static table -> its indexed field
_NAMED: dict[bytes, bytes] = {}                  # name in the static table -> literal-field prefix with that index


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """RFC 7541 5.1: `value` in a `prefix_bits` prefix, OR-ed into `first`."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _FULL.setdefault((_name, _value), _integer(_index, 7, 0x80))
    _NAMED.setdefault(_name, _integer(_index, 4, 0x00))     # literal without indexing, indexed name


_LENGTHS = [bytes([n]) for n in range(127)]      # string length prefixes (H=0) below the 7-bit limit


class StaticTableEncoder:
    """Drop-in for hpack.Encoder as h2 uses it (`encode`, `header_table_size`), with no dynamic table."""

    def __init__(self) -> None:
        self._size_update = b""

    @property
    def header_table_size(self) -> int:
        return 0

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        # The client changed SETTINGS_HEADER_TABLE_SIZE: say once that our table is (still) empty (RFC 7541 4.2).
        self._size_update = b"\x20"

    def encode(self, headers, huffman: bool = True) -> bytes:
        out = [self._size_update] if self._size_update else []
        self._size_update = b""
        full, named, lengths = _FULL, _NAMED, _LENGTHS
        append = out.append
        for name, value in headers:
            field = full.get((name, value))
            if field is not None:
                append(field)
                continue
            prefix = named.get(name)
            if prefix is None:
                n = len(name)
                append(b"\x00")
                append(lengths[n] if n < 127 else _integer(n, 7, 0))
                append(name)
            else:
                append(prefix)
            n = len(value)
            append(lengths[n] if n < 127 else _integer(n, 7, 0))
            append(value)
        return b"".join(out)
