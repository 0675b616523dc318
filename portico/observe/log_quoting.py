"""How a value is quoted in the access log: escaped the way Go's strconv.Quote would (gorouter's log), so no
value can break a line. The compiled writer (access_log.py) escapes nothing itself: a value with a byte that
needs it goes through quote_bytes, which is rare."""

from __future__ import annotations

# Control characters, `"` and `\` escaped the way Go's strconv.Quote would, so a value cannot break a line.
_ESCAPES = {i: f"\\x{i:02x}" for i in range(32)}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x7F: "\\x7f",
                 ord('"'): '\\"', ord("\\"): "\\\\"})


def quote_value(value) -> str:
    """A value as it goes between the quotes: `-` when empty, escaped only when it needs it (rarely)."""
    if not value:
        return "-"
    if value.__class__ is not str:
        value = str(value)
    if value.isprintable() and '"' not in value and "\\" not in value:
        return value
    return value.translate(_ESCAPES)


def quote_bytes(value: bytes) -> bytes:
    """The bytes form of quote_value, for the hot path's rare slow case."""
    if value == b"-":
        return value
    return quote_value(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def header_field_name(header: str) -> str:
    """`Span-Id` -> `span_id`, the key under which an extra header is logged."""
    return header.strip().lower().replace("-", "_")
