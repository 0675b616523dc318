"""Read YAML the way confd's file backend does (gopkg.in/yaml.v2 into interface{}), and flatten it to keys.

The differences from PyYAML's defaults decide values: yaml.v2 reads `y`/`n`/`yes`/`on`/`off` as booleans
(printed `true`/`false`), `1e3` as a float (printed `1000`), keeps timestamps and `1:30` as the text written,
and a key whose value is null is left out. Numbers print as Go's strconv does: ints in decimal, floats with
the shortest digits and no exponent (strconv.FormatFloat(f, 'f', -1, 64)).
"""

from __future__ import annotations

import fnmatch
import math
import os
import posixpath
import re
from pathlib import Path
from typing import Any

import yaml

from portico.confsync.gotemplate.gofmt import format_float_shortest

_BOOL_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_BOOL_FALSE = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}


class ConfdYAMLLoader(yaml.SafeLoader):
    """SafeLoader with yaml.v2's implicit types instead of PyYAML's YAML 1.1 set."""


ConfdYAMLLoader.yaml_implicit_resolvers = {}
ConfdYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile("^(?:" + "|".join(sorted(_BOOL_TRUE | _BOOL_FALSE)) + ")$"),
    list("yYnNtTfFoO"))
ConfdYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"))
ConfdYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
ConfdYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
ConfdYAMLLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


def _construct_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return loader.construct_scalar(node) in _BOOL_TRUE  # type: ignore[arg-type]


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body.startswith("0o"):
        value = int(body[2:], 8)
    elif len(body) > 1 and body[0] == "0" and body[1].isdigit():
        value = int(body, 8)              # Go's ParseInt(s, 0, 64): a leading 0 is octal
    else:
        value = int(body, 0)
    return sign * value


def _construct_timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


ConfdYAMLLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
ConfdYAMLLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
ConfdYAMLLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_as_text)


def go_value_text(value: Any) -> str | None:
    """The string confd stores for a scalar, or None for values it skips (null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return format_float_shortest(value)
        return format_float_shortest(value, "f")
    return str(value)


def flatten(node: Any, key: str, out: dict[str, str]) -> None:
    """confd's nodeWalk: maps and lists become path segments (list items by index), scalars become values."""
    if isinstance(node, dict):
        for k, v in node.items():
            flatten(v, posixpath.normpath(posixpath.join(key, go_value_text(k) or "")), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            flatten(v, posixpath.normpath(posixpath.join(key, str(i))), out)
    else:
        text = go_value_text(node)
        if text is not None:
            out[key] = text


def read_yaml_keys(path: Path, out: dict[str, str]) -> None:
    """Add the keys of one YAML file to `out` (later files override earlier ones, as in confd)."""
    data = yaml.load(path.read_text(), Loader=ConfdYAMLLoader)
    if data is None:
        return
    if not isinstance(data, dict):
        raise yaml.YAMLError(f"{path}: the top level must be a mapping")
    flatten(data, "/", out)


def yaml_files(paths: list[str], pattern: str = "*") -> list[Path]:
    """confd's RecursiveFilesLookup: each path is a file, or a folder searched recursively for names
    matching `pattern` (-filter, default `*`)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found += [Path(root) / f for f in sorted(files) if fnmatch.fnmatchcase(f, pattern)]
        else:
            found.append(path)
    return found
