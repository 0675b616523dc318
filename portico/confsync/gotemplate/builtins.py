"""text/template's predefined functions with Go's semantics: comparisons, len/index/slice, escapers, print.

`and`/`or` short-circuit and return an operand (not a bool); `eq` compares its first argument with each of
the others and refuses to compare an int with a float64; `len` counts bytes; `index` on a map returns the
element type's zero value for a missing key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from portico.confsync.gotemplate.gofmt import sprint, sprintf, sprintln
from portico.confsync.gotemplate.values import MISSING, Byte, GoError, GoFunc, kind, truth, type_name


def _basic(value: Any) -> str:
    k = kind(value)
    return k if k in ("bool", "int", "uint", "float", "string") else "other"


def _num_kind(k: str) -> str:
    return "int" if k in ("int", "uint") else k


def eq(arg1: Any, *others: Any) -> bool:
    if not others:
        raise GoError("missing argument for comparison")
    k1 = _basic(arg1)
    for arg in others:
        k2 = _basic(arg)
        if _num_kind(k1) != _num_kind(k2):
            if arg1 is not MISSING and arg is not MISSING and arg1 is not None and arg is not None:
                raise GoError("incompatible types for comparison")
            truth_value = (arg1 is None or arg1 is MISSING) and (arg is None or arg is MISSING)
        elif k1 == "other":
            if isinstance(arg1, (list, dict)) or isinstance(arg, (list, dict)):
                if arg1 is None or arg is None:
                    truth_value = arg1 is arg
                else:
                    raise GoError(f"non-comparable types {sprint(arg1)}: {type_name(arg1)}, "
                                  f"{type_name(arg)}: {sprint(arg)}")
            else:
                if type_name(arg1) != type_name(arg):
                    raise GoError(f"non-comparable types {sprint(arg1)}: {type_name(arg1)}, "
                                  f"{type_name(arg)}: {sprint(arg)}")
                truth_value = arg1 == arg
        else:
            truth_value = arg1 == arg
        if truth_value:
            return True
    return False


def ne(arg1: Any, arg2: Any) -> bool:
    return not eq(arg1, arg2)


def lt(arg1: Any, arg2: Any) -> bool:
    k1, k2 = _basic(arg1), _basic(arg2)
    if k1 in ("other", "bool") or k2 in ("other", "bool"):
        raise GoError("invalid type for comparison")
    if _num_kind(k1) != _num_kind(k2):
        raise GoError("incompatible types for comparison")
    return bool(arg1 < arg2)


def le(arg1: Any, arg2: Any) -> bool:
    return lt(arg1, arg2) or eq(arg1, arg2)


def gt(arg1: Any, arg2: Any) -> bool:
    return not le(arg1, arg2)


def ge(arg1: Any, arg2: Any) -> bool:
    return not lt(arg1, arg2)


def not_(arg: Any) -> bool:
    return not truth(arg)


def length(item: Any) -> int:
    if item is MISSING or item is None:
        raise GoError("len of nil pointer" if item is None else "len of untyped nil")
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise GoError(f"len of type {type_name(item)}")


def _int_index(value: Any, cap: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if value is None or value is MISSING:
            raise GoError("cannot index slice/array with nil")
        raise GoError(f"cannot index slice/array with type {type_name(value)}")
    if value < 0 or value > cap:
        raise GoError(f"index out of range: {value}")
    return value


def index(item: Any, *indexes: Any) -> Any:
    for idx in indexes:
        if item is MISSING or item is None:
            raise GoError("index of untyped nil" if item is MISSING else "index of nil pointer")
        if isinstance(item, str):
            raw = item.encode()
            i = _int_index(idx, len(raw))
            if i == len(raw):       # Go's indexArg lets len through; reflect then panics
                raise GoError("reflect: string index out of range")
            item = Byte(raw[i])
        elif isinstance(item, (list, tuple)):
            i = _int_index(idx, len(item))
            if i == len(item):
                raise GoError("reflect: slice index out of range")
            item = item[i]
        elif isinstance(item, dict):
            if not isinstance(idx, str):
                raise GoError(f"value has type {type_name(idx)}; should be string")
            item = item.get(idx)     # missing key: the zero value of interface{}, nil
        else:
            raise GoError(f"can't index item of type {type_name(item)}")
    return item


def slice_(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise GoError("slice of untyped nil")
    if len(indexes) > 3:
        raise GoError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise GoError("cannot 3-index slice a string")
        raw = item.encode()
        size = len(raw)
    elif isinstance(item, (list, tuple)):
        size = len(item)
    else:
        raise GoError(f"can't slice item of type {type_name(item)}")
    bounds = [0, size]
    for i, idx in enumerate(indexes[:2]):
        bounds[i] = _int_index(idx, size)
    if bounds[0] > bounds[1]:
        raise GoError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if isinstance(item, str):
        return raw[bounds[0]:bounds[1]].decode(errors="replace")
    return type(item)(item[bounds[0]:bounds[1]]) if isinstance(item, list) else list(item[bounds[0]:bounds[1]])


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*args)


def html_escape(*args: Any) -> str:
    s = _eval_args(args)
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("\0", "\ufffd"))


_JS_SPECIAL = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
               "=": "\\u003D", "`": "\\u0060"}


def js_escape(*args: Any) -> str:
    out = []
    for ch in _eval_args(args):
        if ch in _JS_SPECIAL:
            out.append(_JS_SPECIAL[ch])
        elif ord(ch) < 0x20 or not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def urlquery(*args: Any) -> str:
    return quote_plus(_eval_args(args), safe="-_.~")


def call(fn: Any, *args: Any) -> Any:
    if fn is None or fn is MISSING:
        raise GoError("call of nil")
    if not isinstance(fn, GoFunc):
        raise GoError(f"non-function of type {type_name(fn)}")
    return fn.fn(*args)


BUILTINS: dict[str, GoFunc] = {
    "and": GoFunc("and", lambda *a: a, ("value",), variadic="value", lazy=True),
    "or": GoFunc("or", lambda *a: a, ("value",), variadic="value", lazy=True),
    "not": GoFunc("not", not_, ("value",)),
    "len": GoFunc("len", length, ("value",), returns_error=True),
    "index": GoFunc("index", index, ("value",), variadic="value", returns_error=True),
    "slice": GoFunc("slice", slice_, ("value",), variadic="value", returns_error=True),
    "eq": GoFunc("eq", eq, ("value",), variadic="value", returns_error=True),
    "ne": GoFunc("ne", ne, ("value", "value"), returns_error=True),
    "lt": GoFunc("lt", lt, ("value", "value"), returns_error=True),
    "le": GoFunc("le", le, ("value", "value"), returns_error=True),
    "gt": GoFunc("gt", gt, ("value", "value"), returns_error=True),
    "ge": GoFunc("ge", ge, ("value", "value"), returns_error=True),
    "print": GoFunc("print", sprint, (), variadic="any"),
    "printf": GoFunc("printf", sprintf, ("string",), variadic="any"),
    "println": GoFunc("println", sprintln, (), variadic="any"),
    "html": GoFunc("html", html_escape, (), variadic="any"),
    "js": GoFunc("js", js_escape, (), variadic="any"),
    "urlquery": GoFunc("urlquery", urlquery, (), variadic="any"),
    "call": GoFunc("call", call, ("value",), variadic="value", returns_error=True),
}
