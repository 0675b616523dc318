"""The config toolkit's reader: YAML read as a node tree, so every value keeps its file:line:column.

A config is composed into PyYAML nodes (which keep source positions) and walked through `Section`, rather than
loaded into plain dicts: every problem then becomes one ConfigError naming file:line:col, the dotted key and
what to change. Keys nobody reads are recorded and ignored, as gorouter and route-registrar ignore them.
Used by the router's loader (portico.config.loader) and the registrar's (portico.registrar.config).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from portico.config.values import DURATION_HINT, ConfigError, parse_duration, show, to_bool, to_int, to_str

__all__ = ["Document", "Names", "Section", "read_yaml"]

log = logging.getLogger("portico.config")

_TAG = "tag:yaml.org,2002:"

#: One key, or several spellings of it (the first present one is read).
Names = str | tuple[str, ...]


def read_yaml(path: str | Path, what: str) -> tuple[Document, Node | None]:
    """The file's Document and root node (None for an empty file); ConfigError for an unreadable file.

    `what` names the expected file in the not-found message, e.g. "a gorouter YAML config".
    """
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found; pass the path of {what}", path=name) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", path=name) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}", path=name) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("file is not UTF-8 text", path=name, line=line) from None
    return Document(name), compose(name, text)


def compose(path: str, text: str) -> Node | None:
    """The node tree of `text`; broken YAML is one ConfigError at the place it breaks, with a likely fix."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        # an unclosed quote is reported at the end of the file; point at where it opens instead
        quoted = "quoted scalar" in (exc.context or "")
        mark = (exc.context_mark if quoted else None) or exc.problem_mark or exc.context_mark
        raise ConfigError(_yaml_hint(exc), path=path, line=mark.line + 1 if mark else None,
                          column=mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {' '.join(str(exc).split())}", path=path) from None


def _yaml_hint(exc: yaml.MarkedYAMLError) -> str:
    """One line saying what the YAML parser tripped over and what usually fixes it."""
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    text = f"{exc.context or ''} {problem}".lower()
    if "'\\t'" in text:
        hint = "indent with spaces, not tabs"
    elif "mapping values are not allowed" in text:
        hint = "check the indentation of this line and the one above, or quote a value that contains ': '"
    elif "expected <block end>" in text:
        problem = "this line is indented differently from the keys around it"
        hint = "check the indentation of this line and the one above"
    elif "did not find expected" in text or "could not find expected" in text:
        hint = "check the indentation of this line and the one above"
    elif "quoted scalar" in text:
        problem = "this quoted value is never closed"
        hint = "add the closing quote"
    elif "flow sequence" in text or "flow mapping" in text or "expected ','" in text:
        hint = "check that every '[' and '{' above is closed and items are separated by ','"
    elif "expected a single document" in text:
        problem = "a second YAML document starts here"
        hint = "the file must hold one document; remove this '---' and what follows, or merge them"
    elif "undefined alias" in text:
        hint = "define the &anchor before using the *alias"
    else:
        hint = "check the syntax of this line and the one above"
    return f"invalid YAML: {problem}; {hint}"


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG + "null"


class Document:
    """Per-file state: the path for messages, a constructor for scalars, and the ignored keys seen so far."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.ignored: list[str] = []
        self._constructor = yaml.SafeLoader("")

    def error(self, reason: str, key: str | None, node: Node | None) -> ConfigError:
        return ConfigError(reason, key=key).located(self.path, node)

    def scalar(self, node: Node) -> Any:
        """The Python value of a scalar node (int, float, bool, None or str)."""
        if not isinstance(node, ScalarNode):
            return node
        if node.tag in (_TAG + "int", _TAG + "float", _TAG + "bool", _TAG + "null"):
            try:
                return self._constructor.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError):  # e.g. `!!int abc`: report the text as the wrong type
                return node.value
        return node.value

    def describe(self, node: Node) -> str:
        if isinstance(node, MappingNode):
            return "a mapping (indented keys)"
        if isinstance(node, SequenceNode):
            return "a list"
        return show(self.scalar(node))

    def root(self, node: Node | None, what: str) -> Section:
        """The top-level Section; an empty file is an empty one, anything but a mapping an error."""
        if node is None or is_null(node):
            return Section(self, None, "")
        if not isinstance(node, MappingNode):
            raise self.error(f"the file must be a mapping of {what} (key: value), got {self.describe(node)}",
                             None, node)
        return Section(self, node, "")

    def mapping(self, node: Node | None, name: str, at: Node | None) -> Section:
        """A Section for `node`; null or absent is an empty section, anything else but a mapping is an error."""
        if node is None or is_null(node):
            return Section(self, None, name)
        if not isinstance(node, MappingNode):
            raise self.error(f"expected a section of indented keys, got {self.describe(node)}", name, at or node)
        return Section(self, node, name)


class Section:
    """One YAML mapping under a dotted name. Remembers which keys were read so the rest can be reported."""

    def __init__(self, doc: Document, node: MappingNode | None, name: str) -> None:
        self.doc, self.name, self.node = doc, name, node
        self.entries: dict[str, tuple[Node, Node]] = {}
        self.used: set[str] = set()
        if node is None:
            return
        try:
            doc._constructor.flatten_mapping(node)  # applies `<<: *anchor` merges
        except yaml.MarkedYAMLError as exc:
            raise doc.error(f"cannot merge: {exc.problem}", name or None, node) from None
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise doc.error("keys must be plain names, not lists or mappings", name or None, key_node)
            key = str(key_node.value)
            if key in self.entries:
                log.warning("%s:%d: %s given twice; the later value wins", doc.path, key_node.start_mark.line + 1,
                            self.dotted(key))
            self.entries[key] = (key_node, value_node)

    def dotted(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def take(self, names: Names) -> tuple[str, Node, Node] | None:
        """(dotted key, key node, value node) for the first present spelling; None when absent or null.

        Giving two spellings of one key (route_services_timeout and route_service_timeout) is an error rather
        than a silent choice, since the operator cannot tell which one wins.
        """
        names = (names,) if isinstance(names, str) else names
        found = [n for n in names if n in self.entries]
        self.used.update(found)
        if not found:
            return None
        if len(found) > 1:
            key_node = self.entries[found[1]][0]
            raise self.doc.error(f"also given as {self.dotted(found[0])}; keep only one of them",
                                 self.dotted(found[1]), key_node)
        key_node, value_node = self.entries[found[0]]
        if is_null(value_node):
            return None
        return self.dotted(found[0]), key_node, value_node

    def present(self, names: Names) -> tuple[str, Node, Node]:
        """`take` for a key known to be given (its value was just read)."""
        entry = self.take(names)
        assert entry is not None, names
        return entry

    def error(self, names: Names, reason: str) -> ConfigError:
        """A ConfigError at the key (when given) or else at this section, named by its dotted key."""
        entry = self.take(names)
        first = names if isinstance(names, str) else names[0]
        if entry is not None:
            return self.doc.error(reason, entry[0], entry[1])
        return self.doc.error(reason, self.dotted(first), self.node)

    def get(self, names: Names, default: Any, convert: Callable[[Any], Any], expected: str) -> Any:
        """Convert a scalar value; `convert` returns None (or raises ValueError) when the value does not fit."""
        entry = self.take(names)
        if entry is None:
            return default
        key, key_node, value_node = entry
        value = self.doc.scalar(value_node) if isinstance(value_node, ScalarNode) else None
        try:
            result = convert(value) if isinstance(value_node, ScalarNode) else None
        except ValueError:
            result = None
        if result is None:
            raise self.doc.error(f"expected {expected}, got {self.doc.describe(value_node)}", key, key_node)
        return result

    def integer(self, names: Names, default: int, lo: int | None = None, hi: int | None = None) -> int:
        if self.take(names) is None:
            return default  # the default is not range-checked: it may stand for "not set"
        value = self.get(names, default, to_int, "an integer")
        self._check_range(names, value, lo, hi)
        return value

    def port(self, names: Names, default: int, lo: int = 0) -> int:
        return self.integer(names, default, lo, 65535)

    def flag(self, names: Names, default: bool) -> bool:
        return self.get(names, default, to_bool, "true or false")

    def text(self, names: Names, default: str = "") -> str:
        return self.get(names, default, to_str, "a text value")

    def duration(self, names: Names, default: float, positive: bool = False) -> float:
        entry = self.take(names)
        if entry is None:
            return default
        key, key_node, value_node = entry
        if not isinstance(value_node, ScalarNode):
            raise self.doc.error(f"expected {DURATION_HINT}, got {self.doc.describe(value_node)}", key, key_node)
        try:
            seconds = parse_duration(self.doc.scalar(value_node), key)
        except ConfigError as exc:
            raise exc.located(self.doc.path, key_node) from None
        if positive and seconds == 0:
            raise self.doc.error(f"must be greater than zero, got {value_node.value!s}", key, key_node)
        return seconds

    def choice(self, names: Names, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(names, default)
        if value not in choices:
            key, key_node, _ = self.present(names)  # present, since the default is always valid
            options = " or ".join(choices)
            raise self.doc.error(f"expected {options}, got {show(value)}", key, key_node)
        return value

    def text_list(self, names: Names, default: tuple[str, ...]) -> tuple[str, ...]:
        """A list of text values; a single value is taken as a one-item list."""
        items = self.items(names, accept_scalar=True)
        if items is None:
            return default
        out = []
        for key, node in items:
            value = to_str(self.doc.scalar(node)) if isinstance(node, ScalarNode) else None
            if value is None:
                raise self.doc.error(f"expected a text value, got {self.doc.describe(node)}", key, node)
            out.append(value)
        return tuple(out)

    def items(self, names: Names, accept_scalar: bool = False) -> list[tuple[str, Node]] | None:
        """[(dotted key with index, item node)] of a list value; None when absent or null."""
        entry = self.take(names)
        if entry is None:
            return None
        key, key_node, value_node = entry
        if isinstance(value_node, SequenceNode):
            return [(f"{key}[{i}]", item) for i, item in enumerate(value_node.value)]
        if accept_scalar and isinstance(value_node, ScalarNode):
            return [(key, value_node)]
        raise self.doc.error(f"expected a list (lines starting with '- '), got {self.doc.describe(value_node)}",
                             key, key_node)

    def sections(self, names: Names) -> list[Section] | None:
        """The mappings of a list of mappings; None when absent or null."""
        items = self.items(names)
        if items is None:
            return None
        return [self.doc.mapping(node, key, node) for key, node in items]

    def section(self, names: Names) -> Section:
        """The sub-mapping at `names`; an empty Section when absent or null."""
        entry = self.take(names)
        if entry is None:
            return Section(self.doc, None, self.dotted(names if isinstance(names, str) else names[0]))
        key, key_node, value_node = entry
        return self.doc.mapping(value_node, key, key_node)

    def _check_range(self, names: Names, value: int, lo: int | None, hi: int | None) -> None:
        if (lo is None or value >= lo) and (hi is None or value <= hi):
            return
        key, key_node, _ = self.present(names)
        if hi is None:
            bound = f"at least {lo}"
        elif lo is None:
            bound = f"at most {hi}"
        else:
            bound = f"between {lo} and {hi}"
        raise self.doc.error(f"must be {bound}, got {value}", key, key_node)

    def finish(self) -> None:
        """Record (and log at debug) every key nobody read: gorouter ignores unknown keys, so Portico does too."""
        for key, (key_node, _) in self.entries.items():
            if key not in self.used:
                dotted = self.dotted(key)
                log.debug("%s:%d: ignoring unknown key %s", self.doc.path, key_node.start_mark.line + 1, dotted)
                self.doc.ignored.append(dotted)
