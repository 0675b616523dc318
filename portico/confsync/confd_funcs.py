"""confd's template function map for Go templates, with confd's Go signatures, sort orders and errors.

Read from kelseyhightower/confd (resource/template/template_funcs.go) and memkv (the store behind get, gets,
getv, getvs, ls, lsdir, exists). What matters for byte-identical output: `gets` sorts by key, `getvs` by value,
`ls`/`lsdir` by name; `json` gives map[string]interface{} whose numbers are float64; `split` gives a []string
(which `join` takes, while a []interface{} is refused); `add`/`sub`/... take Go ints only.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json as _json
import logging
import os
import posixpath
import re
import socket
from typing import Any

from portico.confsync.gotemplate import GoError, GoFunc, GoStruct
from portico.confsync.gotemplate.gotime import GoTime
from portico.confsync.gotemplate.values import IntSlice, KVSlice, StrSlice

log = logging.getLogger("portico.confsync")


class KeyNotFound(GoError):
    """memkv's "key does not exist" error, keeping the key so confsync can name it."""

    def __init__(self, key: str):
        super().__init__(f"key does not exist: {key}")
        self.key = key


class KVPair(GoStruct):
    """memkv.KVPair: `.Key` and `.Value`."""

    go_type = "memkv.KVPair"
    go_fields = ("Key", "Value")
    __slots__ = ("Key", "Value")

    def __init__(self, key: str, value: str):
        self.Key, self.Value = key, value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KVPair) and (self.Key, self.Value) == (other.Key, other.Value)

    def __repr__(self) -> str:
        return f"KVPair({self.Key!r}, {self.Value!r})"


class SRV(GoStruct):
    """*net.SRV as lookupSRV returns it."""

    go_type = "*net.SRV"
    go_fields = ("Target", "Port", "Priority", "Weight")
    go_pointer = True

    def __init__(self, target: str, port: int, priority: int, weight: int):
        self.Target, self.Port, self.Priority, self.Weight = target, port, priority, weight


def path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: `*` and `?` never cross a `/`, `[...]` classes, `\\` escapes; bad pattern -> error."""
    return _pattern_regex(pattern).fullmatch(name) is not None


@functools.lru_cache(maxsize=256)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """path.Match's pattern as a compiled regular expression (raises GoError for a bad pattern)."""
    regex: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            regex.append("[^/]*")
        elif ch == "?":
            regex.append("[^/]")
        elif ch == "\\":
            i += 1
            if i >= len(pattern):
                raise GoError("syntax error in pattern")
            regex.append(re.escape(pattern[i]))
        elif ch == "[":
            end = i + 1
            if end < len(pattern) and pattern[end] == "^":
                end += 1
            body_start = end
            while end < len(pattern) and (pattern[end] != "]" or False):
                if pattern[end] == "\\":
                    end += 1
                end += 1
            if end >= len(pattern) or end == body_start:
                raise GoError("syntax error in pattern")
            body = pattern[body_start:end]
            negate = pattern[i + 1] == "^"
            parts, j = [], 0
            while j < len(body):
                c = body[j]
                if c == "\\":
                    j += 1
                    c = body[j]
                if j + 2 < len(body) and body[j + 1] == "-":
                    hi = body[j + 2]
                    if hi == "\\":
                        hi = body[j + 3]
                        j += 1
                    if hi < c:
                        raise GoError("syntax error in pattern")
                    parts.append(f"{re.escape(c)}-{re.escape(hi)}")
                    j += 3
                else:
                    parts.append(re.escape(c))
                    j += 1
            regex.append("[" + ("^" if negate else "") + "".join(parts) + "]")
            i = end
        else:
            regex.append(re.escape(ch))
        i += 1
    return re.compile("".join(regex), re.S)


def _clean_terms(path: str) -> list[str]:
    return go_path_clean(path).split("/")


def go_path_clean(path: str) -> str:
    """Go's path.Clean."""
    if path == "":
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def go_path_base(path: str) -> str:
    if path == "":
        return "."
    path = path.rstrip("/")
    if path == "":
        return "/"
    return path[path.rfind("/") + 1:]


def go_path_dir(path: str) -> str:
    return go_path_clean(path[: path.rfind("/") + 1])


class Store:
    """memkv.Store: the keys one resource sees (prefix stripped), with confd's lookups."""

    def __init__(self, data: dict[str, str]):
        self.data = dict(data)

    def get(self, key: str) -> KVPair:
        if key not in self.data:
            raise KeyNotFound(key)
        return KVPair(key, self.data[key])

    def getv(self, key: str, *default: str) -> str:
        if key in self.data:
            return self.data[key]
        if default:
            return default[0]
        raise KeyNotFound(key)

    def exists(self, key: str) -> bool:
        return key in self.data

    def gets(self, pattern: str) -> KVSlice:
        return KVSlice(KVPair(k, self.data[k]) for k in sorted(self.data) if path_match(pattern, k))

    def getvs(self, pattern: str) -> StrSlice:
        return StrSlice(sorted(kv.Value for kv in self.gets(pattern)))

    def ls(self, path: str) -> StrSlice:
        names = set()
        prefix = _clean_terms(path)
        for key in self.data:
            if key == path:
                names.add(go_path_base(key))
                continue
            if _terms_start_with(_clean_terms(go_path_dir(key)), prefix):
                stripped = key[len(path):] if key.startswith(path) else key
                stripped = stripped[1:] if stripped.startswith("/") else stripped
                names.add(stripped.split("/")[0])
        return StrSlice(sorted(names))

    def lsdir(self, path: str) -> StrSlice:
        names = set()
        prefix = _clean_terms(path)
        for key in self.data:
            if key.startswith(path):
                items = _clean_terms(go_path_dir(key))
                if _terms_start_with(items, prefix) and len(items) - len(prefix) >= 1:
                    names.add(items[len(prefix)])
        return StrSlice(sorted(names))


def _terms_start_with(terms: list[str], prefix: list[str]) -> bool:
    return len(terms) >= len(prefix) and terms[: len(prefix)] == prefix


def _json_error(exc: Exception, data: str) -> GoError:
    if isinstance(exc, _json.JSONDecodeError):
        if exc.pos >= len(data.rstrip()):
            return GoError("unexpected end of JSON input")
        ch = data[exc.pos]
        return GoError(f"invalid character {ch!r} looking for beginning of value")
    return GoError(str(exc))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _decode(data: str, want: type, go_name: str) -> Any:
    try:
        value = _json.loads(data, parse_int=float, parse_float=float, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _json_error(exc, data) from None
    if value is None:
        return want()
    if not isinstance(value, want):
        found = {dict: "object", list: "array", str: "string", bool: "bool", float: "number"}[type(value)]
        raise GoError(f"json: cannot unmarshal {found} into Go value of type {go_name}")
    return value


def unmarshal_object(data: str) -> dict:
    return _decode(data, dict, "map[string]interface {}")


def unmarshal_array(data: str) -> list:
    return _decode(data, list, "[]interface {}")


def create_map(*values: Any) -> dict:
    if len(values) % 2:
        raise GoError("invalid map call")
    out = {}
    for i in range(0, len(values), 2):
        if not isinstance(values[i], str):
            raise GoError("map keys must be strings")
        out[values[i]] = values[i + 1]
    return out


def lookup_ip(name: str) -> StrSlice:
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return StrSlice()
    return StrSlice(sorted({info[4][0] for info in infos}))


SRV_RESOLVER: Any = None     # a dns.resolver.Resolver; None = the system's (tests point one at a local server)


def lookup_srv(service: str, proto: str, name: str) -> list:
    """net.LookupSRV, re-sorted as confd does by Target+Port+Priority+Weight; empty on any failure (as confd).

    Needs dnspython (the `confsync` extra); without it lookupSRV logs a warning and returns no records."""
    try:
        import dns.resolver
    except ImportError:
        log.warning("lookupSRV needs the dnspython package (pip install 'portico[confsync]'); no records")
        return []
    qname = f"_{service}._{proto}.{name}" if service or proto else name
    resolver = SRV_RESOLVER or dns.resolver.get_default_resolver()
    try:
        answers = resolver.resolve(qname, "SRV", lifetime=5.0)
    except Exception:
        return []
    records = [SRV(str(a.target), a.port, a.priority, a.weight) for a in answers]
    return sorted(records, key=lambda r: f"{r.Target}{r.Port}{r.Priority}{r.Weight}")


def parse_bool(s: str) -> bool:
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise GoError(f'strconv.ParseBool: parsing "{s}": invalid syntax')


def atoi(s: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        raise GoError(f'strconv.Atoi: parsing "{s}": invalid syntax')
    value = int(s)
    if not -(2 ** 63) <= value < 2 ** 63:
        raise GoError(f'strconv.Atoi: parsing "{s}": value out of range')
    return value


def go_div(a: int, b: int) -> int:
    if b == 0:
        raise GoError("runtime error: integer divide by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def go_mod(a: int, b: int) -> int:
    if b == 0:
        raise GoError("runtime error: integer divide by zero")
    return a - go_div(a, b) * b


def go_split(s: str, sep: str) -> StrSlice:
    if sep == "":
        return StrSlice(list(s))
    return StrSlice(s.split(sep))


def go_replace(s: str, old: str, new: str, n: int) -> str:
    return s.replace(old, new, n if n >= 0 else -1)


def reverse(values: Any) -> Any:
    if isinstance(values, (StrSlice, KVSlice)):
        values.reverse()
    return values


def sort_by_length(values: StrSlice) -> StrSlice:
    """In place, like Go's sort.Sort (stable here; Go's is stable for up to 12 elements)."""
    values.sort(key=lambda s: len(s.encode()))
    return values


def sort_kv_by_length(values: KVSlice) -> KVSlice:
    values.sort(key=lambda kv: len(kv.Key.encode()))
    return values


def base64_decode(data: str) -> str:
    try:
        return base64.b64decode(data.encode(), validate=True).decode(errors="replace")
    except (binascii.Error, ValueError):
        bad = next((i for i, c in enumerate(data) if not (c.isalnum() or c in "+/=")), len(data) - len(data) % 4)
        raise GoError(f"illegal base64 data at input byte {bad}") from None


def getenv(key: str, *default: str) -> str:
    value = os.environ.get(key, "")
    return value if value or not default else default[0]


def file_exists(path: str) -> bool:
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def confd_funcs(store: Store) -> dict[str, GoFunc]:
    """Every function confd adds to its templates, bound to one resource's store."""
    def f(name: str, fn: Any, params: tuple[str, ...] = (), variadic: str | None = None,
          error: bool = False) -> GoFunc:
        return GoFunc(name, fn, params, variadic, error)

    return {fn.name: fn for fn in [
        f("exists", store.exists, ("string",)),
        f("ls", store.ls, ("string",)),
        f("lsdir", store.lsdir, ("string",)),
        f("get", store.get, ("string",), error=True),
        f("gets", store.gets, ("string",), error=True),
        f("getv", store.getv, ("string",), "string", error=True),
        f("getvs", store.getvs, ("string",), error=True),
        f("base", go_path_base, ("string",)),
        f("split", go_split, ("string", "string")),
        f("json", unmarshal_object, ("string",), error=True),
        f("jsonArray", unmarshal_array, ("string",), error=True),
        f("dir", go_path_dir, ("string",)),
        f("map", create_map, (), "any", error=True),
        f("getenv", getenv, ("string",), "string"),
        f("join", lambda items, sep: sep.join(items), ("[]string", "string")),
        f("datetime", GoTime.now),
        f("toUpper", str.upper, ("string",)),
        f("toLower", str.lower, ("string",)),
        f("contains", lambda s, sub: sub in s, ("string", "string")),
        f("replace", go_replace, ("string", "string", "string", "int")),
        f("trimSuffix", lambda s, suf: s[: -len(suf)] if suf and s.endswith(suf) else s, ("string", "string")),
        f("lookupIP", lookup_ip, ("string",)),
        f("lookupIPV4", lambda name: StrSlice(ip for ip in lookup_ip(name) if "." in ip), ("string",)),
        f("lookupIPV6", lambda name: StrSlice(ip for ip in lookup_ip(name) if ":" in ip), ("string",)),
        f("lookupSRV", lookup_srv, ("string", "string", "string")),
        f("fileExists", file_exists, ("string",)),
        f("base64Encode", lambda s: base64.b64encode(s.encode()).decode(), ("string",)),
        f("base64Decode", base64_decode, ("string",), error=True),
        f("parseBool", parse_bool, ("string",), error=True),
        f("reverse", reverse, ("any",)),
        f("sortByLength", sort_by_length, ("[]string",)),
        f("sortKVByLength", sort_kv_by_length, ("[]memkv.KVPair",)),
        f("add", lambda a, b: a + b, ("int", "int")),
        f("sub", lambda a, b: a - b, ("int", "int")),
        f("div", go_div, ("int", "int")),
        f("mod", go_mod, ("int", "int")),
        f("mul", lambda a, b: a * b, ("int", "int")),
        f("seq", lambda first, last: IntSlice(range(first, last + 1)), ("int", "int")),
        f("atoi", atoi, ("string",), error=True),
    ]}
