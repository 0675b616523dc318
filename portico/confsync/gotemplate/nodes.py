"""The parse tree of a Go template (text/template/parse's node types) and Go's String() of each node.

`String()` matters: execution errors quote the failing node (`at <getv "/x">`) exactly as Go prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Node:
    pos: int

    def go_string(self) -> str:
        raise NotImplementedError


@dataclass(slots=True)
class TextNode(Node):
    text: str

    def go_string(self) -> str:
        return self.text


@dataclass(slots=True)
class CommentNode(Node):
    text: str

    def go_string(self) -> str:
        return "{{" + self.text + "}}"


@dataclass(slots=True)
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)

    def go_string(self) -> str:
        return "".join(n.go_string() for n in self.nodes)


@dataclass(slots=True)
class DotNode(Node):
    def go_string(self) -> str:
        return "."


@dataclass(slots=True)
class NilNode(Node):
    def go_string(self) -> str:
        return "nil"


@dataclass(slots=True)
class BoolNode(Node):
    value: bool

    def go_string(self) -> str:
        return "true" if self.value else "false"


@dataclass(slots=True)
class NumberNode(Node):
    text: str
    is_int: bool = False
    is_float: bool = False
    int_value: int = 0
    float_value: float = 0.0
    is_char: bool = False

    def go_string(self) -> str:
        return self.text


@dataclass(slots=True)
class StringNode(Node):
    quoted: str
    value: str

    def go_string(self) -> str:
        return self.quoted


@dataclass(slots=True)
class IdentifierNode(Node):
    name: str

    def go_string(self) -> str:
        return self.name


@dataclass(slots=True)
class VariableNode(Node):
    idents: list[str]             # ["$x", "field", ...]

    def go_string(self) -> str:
        return ".".join(self.idents)


@dataclass(slots=True)
class FieldNode(Node):
    idents: list[str]             # ["a", "b"] for .a.b

    def go_string(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass(slots=True)
class ChainNode(Node):
    node: Node
    fields: list[str]

    def go_string(self) -> str:
        inner = self.node.go_string()
        if isinstance(self.node, PipeNode):
            inner = "(" + inner + ")"
        return inner + "".join("." + f for f in self.fields)


@dataclass(slots=True)
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def go_string(self) -> str:
        parts = []
        for arg in self.args:
            text = arg.go_string()
            parts.append("(" + text + ")" if isinstance(arg, PipeNode) else text)
        return " ".join(parts)


@dataclass(slots=True)
class PipeNode(Node):
    line: int
    decl: list[VariableNode] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[CommandNode] = field(default_factory=list)

    def go_string(self) -> str:
        text = ""
        if self.decl:
            text = ", ".join(v.go_string() for v in self.decl) + (" = " if self.is_assign else " := ")
        return text + " | ".join(c.go_string() for c in self.cmds)


@dataclass(slots=True)
class ActionNode(Node):
    line: int
    pipe: PipeNode

    def go_string(self) -> str:
        return "{{" + self.pipe.go_string() + "}}"


@dataclass(slots=True)
class BranchNode(Node):
    """if, range and with: a pipeline, a body and an optional else body."""

    keyword: str
    line: int
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None = None

    def go_string(self) -> str:
        text = "{{" + self.keyword + " " + self.pipe.go_string() + "}}" + self.body.go_string()
        if self.else_body is not None:
            text += "{{else}}" + self.else_body.go_string()
        return text + "{{end}}"


@dataclass(slots=True)
class BreakNode(Node):
    line: int

    def go_string(self) -> str:
        return "{{break}}"


@dataclass(slots=True)
class ContinueNode(Node):
    line: int

    def go_string(self) -> str:
        return "{{continue}}"


@dataclass(slots=True)
class TemplateNode(Node):
    line: int
    name: str
    pipe: PipeNode | None

    def go_string(self) -> str:
        if self.pipe is None:
            return "{{template " + _quote(self.name) + "}}"
        return "{{template " + _quote(self.name) + " " + self.pipe.go_string() + "}}"


def _quote(s: str) -> str:
    from portico.confsync.gotemplate.gofmt import quote
    return quote(s)


@dataclass(slots=True)
class Tree:
    """One named template: its body, plus the text and file name errors are located in."""

    name: str
    parse_name: str
    text: str
    root: ListNode
    extra: dict[str, Any] = field(default_factory=dict)

    def location(self, pos: int) -> tuple[int, int]:
        """(line, column) of a node position, column in bytes from the line start (Go's ErrorContext)."""
        before = self.text[:pos]
        line = 1 + before.count("\n")
        last = before.rfind("\n")
        return line, len(before[last + 1:].encode()) if last >= 0 else len(before.encode())
