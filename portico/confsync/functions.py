"""The confd template functions, under confd's names, for Jinja2 templates.

confd users know `getv`, `gets`, `ls`... by heart; keeping the names (and confd's sort orders) lets a template
move over by changing only the Go-template syntax to Jinja2's.
"""

from __future__ import annotations

import base64
import datetime as _dt
import fnmatch
import json as _json
import os
import posixpath
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class MissingKeyError(LookupError):
    """A template asked for a key that is not in the store (and gave no default)."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"key not found: {self.key}"


@dataclass(frozen=True, slots=True)
class KVPair:
    """One key and its value, as confd's `get` and `gets` return it (`.Key`, `.Value`)."""

    Key: str
    Value: str

    @property
    def key(self) -> str:
        return self.Key

    @property
    def value(self) -> str:
        return self.Value


def _match(pattern: str, key: str) -> bool:
    """Go's path.Match: `*` does not cross a `/`."""
    if pattern.count("/") != key.count("/"):
        return False
    return all(fnmatch.fnmatchcase(k, p) for p, k in zip(pattern.split("/"), key.split("/"), strict=False))


class Store:
    """The keys one resource sees, already stripped of its prefix ("/subdomain", "/upstream/app1")."""

    def __init__(self, data: dict[str, str]):
        self.data = dict(data)

    def getv(self, key: str, *default: str) -> str:
        if key in self.data:
            return self.data[key]
        if default:
            return default[0]
        raise MissingKeyError(key)

    def get(self, key: str) -> KVPair:
        if key not in self.data:
            raise MissingKeyError(key)
        return KVPair(key, self.data[key])

    def exists(self, key: str) -> bool:
        return key in self.data

    def gets(self, pattern: str) -> list[KVPair]:
        """All pairs whose key matches the glob, sorted by key (as confd)."""
        return [KVPair(k, self.data[k]) for k in sorted(self.data) if _match(pattern, k)]

    def getvs(self, pattern: str) -> list[str]:
        """All values whose key matches the glob, sorted by value (as confd)."""
        return sorted(self.data[k] for k in self.data if _match(pattern, k))

    def _children(self, path: str, dirs_only: bool) -> list[str]:
        path = "/" + path.strip("/") if path.strip("/") else "/"
        base = path.rstrip("/") + "/"
        names: set[str] = set()
        for key in self.data:
            if key == path and not dirs_only:
                names.add(posixpath.basename(key))
            elif key.startswith(base):
                rest = key[len(base):].split("/")
                if not dirs_only or len(rest) > 1:
                    names.add(rest[0])
        return sorted(names)

    def ls(self, path: str) -> list[str]:
        """Names of the direct children of `path`, sorted."""
        return self._children(path, dirs_only=False)

    def lsdir(self, path: str) -> list[str]:
        """Names of the direct children of `path` that have children themselves, sorted."""
        return self._children(path, dirs_only=True)


def _seq(first: int, last: int) -> list[int]:
    return list(range(int(first), int(last) + 1))


def _map(*pairs: Any) -> dict:
    if len(pairs) % 2:
        raise ValueError("map needs an even number of arguments (key, value, ...)")
    return {str(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)}


def _lookup_ip(name: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(name, None)
    except socket.gaierror:
        return []
    return sorted({str(info[4][0]) for info in infos})


def _replace(s: str, old: str, new: str, n: int = -1) -> str:
    return s.replace(old, new, n if n >= 0 else -1)


def _getenv(key: str, *default: str) -> str:
    value = os.environ.get(key, "")
    return value if value or not default else default[0]


def _div(a, b):
    return a // b if isinstance(a, int) and isinstance(b, int) else a / b


def template_functions(store: Store) -> dict[str, Callable[..., Any]]:
    """Every confd function, bound to one resource's store, ready for a Jinja2 environment's globals."""
    return {
        "getv": store.getv, "getvs": store.getvs, "get": store.get, "gets": store.gets,
        "ls": store.ls, "lsdir": store.lsdir, "exists": store.exists,
        "json": _json.loads, "jsonArray": _json.loads,
        "split": lambda s, sep: s.split(sep), "join": lambda items, sep: sep.join(str(i) for i in items),
        "base": posixpath.basename, "dir": posixpath.dirname, "replace": _replace,
        "contains": lambda s, sub: sub in s, "toUpper": str.upper, "toLower": str.lower,
        "trimSuffix": lambda s, suf: s[: -len(suf)] if suf and s.endswith(suf) else s,
        "trim": lambda s, chars=None: s.strip(chars), "getenv": _getenv,
        "datetime": _dt.datetime.now, "lookupIP": _lookup_ip,
        "atoi": int, "seq": _seq, "add": lambda a, b: a + b, "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b, "div": _div, "mod": lambda a, b: a % b, "map": _map,
        "base64Encode": lambda s: base64.b64encode(s.encode()).decode(),
        "base64Decode": lambda s: base64.b64decode(s.encode()).decode(),
        "reverse": lambda items: list(reversed(items)),
        "sortByLength": lambda items: sorted(items, key=len),
        "sortKVByLength": lambda pairs: sorted(pairs, key=lambda kv: len(kv.Key)),
        "fileExists": os.path.exists,
        "parseBool": lambda s: str(s).strip().lower() in ("1", "t", "true"),
    }
