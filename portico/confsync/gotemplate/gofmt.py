"""Go's fmt for template values: Sprint, Sprintln, Sprintf with Go's verbs, flags, widths and error forms.

Go prints a float64 with the shortest digits that round-trip, switching to an exponent from 1e+21 down to
1e+06 (`%v` uses precision 6 for that decision): 8080 prints `8080`, 1234567 prints `1.234567e+06`. Maps print
as `map[k:v]` in sorted key order, slices as `[a b]`, nil as `<nil>`, structs as `{f1 f2}`.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from portico.confsync.gotemplate.values import MISSING, GoFunc, GoStruct, type_name


def shortest_digits(x: float) -> tuple[str, int]:
    """(digits, dp) of |x| with Go's shortest round-trip digits: value = 0.<digits> * 10**dp."""
    if x == 0:
        return "0", 1
    _sign, digits, exponent = Decimal(repr(abs(x))).as_tuple()
    text = "".join(str(d) for d in digits).rstrip("0") or "0"
    lead_zeros = len(digits) - len("".join(str(d) for d in digits).lstrip("0"))
    dp = len(digits) + int(exponent) - lead_zeros
    return text.lstrip("0") or "0", dp


def _exp_form(digits: str, dp: int, upper: bool = False) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = dp - 1
    return f"{mantissa}{'E' if upper else 'e'}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def format_float_shortest(x: float, verb: str = "g") -> str:
    """strconv.FormatFloat(x, verb, -1, 64): shortest round-trip digits; 'g' uses an exponent when
    exp < -4 or exp >= 6 (Go's rule for the shortest precision, used by %v)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if verb in "gGf" and x.is_integer() and abs(x) < 1e6 and x != 0:   # fast path: exact small integers
        return str(int(x))
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    digits, dp = shortest_digits(x)
    if verb in "eE":
        return sign + _exp_form(digits, dp, verb == "E")
    if verb in "gG" and (dp - 1 < -4 or dp - 1 >= 6):
        return sign + _exp_form(digits, dp, verb == "G")
    if dp <= 0:
        return sign + "0." + "0" * (-dp) + digits
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return sign + digits[:dp] + "." + digits[dp:]


def quote(s: str) -> str:
    """strconv.Quote: Go escapes, non-printable runes as \\x, \\u or \\U."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _sorted_items(mapping: dict) -> list[tuple[Any, Any]]:
    try:
        return sorted(mapping.items(), key=lambda kv: kv[0])
    except TypeError:
        return sorted(mapping.items(), key=lambda kv: (type_name(kv[0]), str(kv[0])))


def format_value(value: Any, verb: str = "v", plus: bool = False, depth: int = 0) -> str:
    """One operand formatted with a verb and no width: %v, %s, %d, %q, %x... (bad verbs as Go prints them)."""
    if value is MISSING or value is None:
        return "<nil>" if verb == "v" else f"%!{verb}(<nil>)"
    if isinstance(value, bool):
        if verb in "vt":
            return "true" if value else "false"
        return _bad(verb, value)
    if isinstance(value, int):
        return _format_int(value, verb)
    if isinstance(value, float):
        return _format_float(value, verb, None)
    if isinstance(value, str):
        if verb in "vs":
            return value
        if verb == "q":
            return quote(value)
        if verb in "xX":
            text = value.encode().hex()
            return text.upper() if verb == "X" else text
        return _bad(verb, value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(format_value(v, verb, plus, depth + 1) for v in value) + "]"
    if isinstance(value, dict):
        inner = " ".join(f"{format_value(k, verb, plus, depth + 1)}:{format_value(v, verb, plus, depth + 1)}"
                         for k, v in _sorted_items(value))
        return "map[" + inner + "]"
    if isinstance(value, GoStruct):
        stringer = value.go_method("String")
        if stringer is not None and verb in "vs":
            return str(stringer.fn())
        parts = []
        for name in value.go_fields:
            text = format_value(value.go_field(name), verb, plus, depth + 1)
            parts.append(f"{name}:{text}" if plus else text)
        body = "{" + " ".join(parts) + "}"
        return ("&" + body) if value.go_pointer and depth == 0 else body
    if isinstance(value, GoFunc):
        return "0x1" if verb == "v" else _bad(verb, value)
    return str(value)


def _bad(verb: str, value: Any) -> str:
    return f"%!{verb}({type_name(value)}={format_value(value)})"


def _format_int(value: int, verb: str) -> str:
    if verb in "vd":
        return str(value)
    if verb == "x":
        return ("-" if value < 0 else "") + format(abs(value), "x")
    if verb == "X":
        return ("-" if value < 0 else "") + format(abs(value), "X")
    if verb == "o":
        return ("-" if value < 0 else "") + format(abs(value), "o")
    if verb == "O":
        return ("-" if value < 0 else "") + "0o" + format(abs(value), "o")
    if verb == "b":
        return ("-" if value < 0 else "") + format(abs(value), "b")
    if verb == "c":
        return chr(value) if 0 <= value <= 0x10FFFF else "\ufffd"
    if verb == "q":
        ch = chr(value) if 0 <= value <= 0x10FFFF else "\ufffd"
        return "'" + quote(ch)[1:-1].replace("\\\"", '"').replace("'", "\\'") + "'"
    if verb == "U":
        return f"U+{value:04X}"
    return _bad(verb, value)


def _format_float(value: float, verb: str, prec: int | None) -> str:
    """%v/%g shortest unless a precision is given; %e, %f default to precision 6 (fmt's defaults)."""
    if verb not in "veEfFgG":
        return _bad(verb, value)
    if math.isnan(value) or math.isinf(value):
        return format_float_shortest(value)
    if verb in "vgG":
        if prec is None:
            return format_float_shortest(value, "G" if verb == "G" else "g")
        text = format(value, f".{prec or 1}g")
        return text.upper() if verb == "G" else text
    text = format(value, f".{6 if prec is None else prec}{verb.lower()}")
    return text.upper() if verb == "E" else text


_SPEC = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?(.)?", re.S)


def _pad(text: str, width: int | None, minus: bool, zero: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if minus:
        return text + " " * (width - len(text))
    if zero:
        sign = text[0] if text[:1] in "+-" else ""
        return sign + "0" * (width - len(text)) + text[len(sign):]
    return " " * (width - len(text)) + text


def _format_one(value: Any, verb: str, flags: str, width: int | None, prec: int | None) -> str:
    plus = "+" in flags
    if verb == "v" and plus:
        text = format_value(value, "v", plus=True)
    elif verb == "T":
        text = type_name(value)
    elif isinstance(value, float) and not isinstance(value, bool):
        text = _format_float(value, verb, prec)
        if plus and not text.startswith(("-", "%")):
            text = "+" + text
        elif " " in flags and not text.startswith(("-", "%")):
            text = " " + text
    elif isinstance(value, int) and not isinstance(value, bool):
        text = _format_int(value, verb)
        if prec is not None and verb in "dxXob" and not text.startswith("%"):
            neg = text.startswith("-")
            digits = text.lstrip("-").rjust(prec, "0")
            text = ("-" if neg else "") + digits
        if "#" in flags and verb in "xX" and not text.startswith("%"):
            text = ("-" if value < 0 else "") + ("0x" if verb == "x" else "0X") + text.lstrip("-")
        if "#" in flags and verb == "o" and not text.startswith("%") and not text.lstrip("-").startswith("0"):
            text = ("-" if value < 0 else "") + "0" + text.lstrip("-")
        if plus and verb in "dv" and value >= 0:
            text = "+" + text
        elif " " in flags and verb in "dv" and value >= 0:
            text = " " + text
    elif isinstance(value, str):
        shown = value[:prec] if prec is not None else value
        text = "`" + shown + "`" if verb == "q" and "#" in flags and "`" not in shown else format_value(shown, verb)
    else:
        text = format_value(value, verb)
    zero = "0" in flags and not isinstance(value, (str, list, dict, GoStruct)) and value is not None
    return _pad(text, width, "-" in flags, zero and "-" not in flags)


def sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf with Go's verbs, flags, width/precision (also `*`) and Go's error forms."""
    out: list[str] = []
    argi = 0
    i = 0
    n = len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        m = _SPEC.match(fmt, j)
        assert m is not None
        flags, width_s, prec_s, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        i = m.end()
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%" and not flags and width_s is None and prec_s is None:
            out.append("%")
            continue
        width: int | None = None
        prec: int | None = None
        if width_s == "*":
            if argi < len(args) and isinstance(args[argi], int):
                width = args[argi]
                if width < 0:
                    flags, width = flags + "-", -width
            else:
                out.append("%!(BADWIDTH)")
            argi += 1
        elif width_s is not None:
            width = int(width_s)
        if prec_s == "*":
            if argi < len(args) and isinstance(args[argi], int):
                prec = args[argi] if args[argi] >= 0 else None
            else:
                out.append("%!(BADPREC)")
            argi += 1
        elif prec_s is not None:
            prec = int(prec_s) if prec_s else 0
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(args[argi], verb, flags, width, prec))
        argi += 1
    if argi < len(args):
        extra = ", ".join(f"{type_name(a)}={format_value(a)}" if a is not None and a is not MISSING else "<nil>"
                          for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def sprint(*args: Any) -> str:
    """fmt.Sprint: a space between two operands when neither is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(format_value(arg))
    return "".join(out)


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: spaces between all operands, a newline at the end."""
    return " ".join(format_value(a) for a in args) + "\n"
