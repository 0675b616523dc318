"""Parse Go template tokens into trees, with text/template/parse's grammar, scoping and error messages.

Variables are checked at parse time (`undefined variable "$x"`), as are function names (`function "f" not
defined`); variables declared inside if/range/with live until the matching {{end}}.
"""

from __future__ import annotations

import re

from portico.confsync.gotemplate import nodes as n
from portico.confsync.gotemplate.errors import TemplateSyntaxError
from portico.confsync.gotemplate.lexer import Lexer, Token

_OPERAND_START = {"BOOL", "CHAR", "DOT", "FIELD", "IDENT", "NUMBER", "NIL", "RAW", "STRING", "VAR", "LPAREN"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[abfnrtv\\'\"])")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
                   "'": "'", '"': '"'}


def unquote(text: str) -> str:
    """strconv.Unquote for "..." and `...` literals (Go's escapes; anything else is invalid syntax)."""
    if text.startswith("`"):
        return text[1:-1].replace("\r", "")
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        m = _ESCAPE.match(body, i)
        if m is None:
            raise ValueError("invalid syntax")
        esc = m.group(1)
        if esc[0] in "xuU":
            out.append(chr(int(esc[1:], 16)))
        elif esc[0].isdigit():
            out.append(chr(int(esc, 8)))
        else:
            out.append(_SIMPLE_ESCAPES[esc])
        i = m.end()
    return "".join(out)


def _token_text(tok: Token) -> str:
    if tok.kind == "EOF":
        return "EOF"
    if tok.kind == "KEYWORD":
        return f"<{tok.value}>"
    from portico.confsync.gotemplate.gofmt import quote
    if len(tok.value) > 10:
        return quote(tok.value[:10]) + "..."
    return quote(tok.value)


class _End(n.Node):
    pass


class _Else(n.Node):
    pass


class Parser:
    """Parses one template text into {name: Tree}: the text itself plus every {{define}}/{{block}}."""

    def __init__(self, name: str, text: str, funcs: set[str]):
        self.name, self.text, self.funcs = name, text, funcs
        self.tokens = Lexer(name, text).tokenize()
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.trees: dict[str, n.Tree] = {}
        self.last: Token = self.tokens[0]

    # token stream -------------------------------------------------------------------------------------
    def next(self) -> Token:
        tok = self.tokens[min(self.i, len(self.tokens) - 1)]
        self.i += 1
        self.last = tok
        return tok

    def backup(self, count: int = 1) -> None:
        self.i -= count

    def peek(self) -> Token:
        return self.tokens[min(self.i, len(self.tokens) - 1)]

    def next_non_space(self) -> Token:
        tok = self.next()
        while tok.kind == "SPACE":
            tok = self.next()
        return tok

    def peek_non_space(self) -> Token:
        tok = self.next_non_space()
        self.backup()
        return tok

    def error(self, message: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(f"template: {self.name}:{self.last.line}: {message}", self.last.line)

    def unexpected(self, tok: Token, context: str) -> TemplateSyntaxError:
        if tok.kind == "RPAREN" and context != "parenthesized pipeline":
            return self.error("unexpected right paren")
        return self.error(f"unexpected {_token_text(tok)} in {context}")

    def expect(self, kind: str, context: str) -> Token:
        tok = self.next_non_space()
        if tok.kind != kind:
            raise self.unexpected(tok, context)
        return tok

    # templates ----------------------------------------------------------------------------------------
    def parse(self) -> dict[str, n.Tree]:
        root = n.ListNode(self.peek().pos)
        while self.peek().kind != "EOF":
            if self.peek().kind == "LDELIM":
                start = self.i
                self.next()
                tok = self.next_non_space()
                if tok.kind == "KEYWORD" and tok.value == "define":
                    self._definition()
                    continue
                self.i = start
            node = self._text_or_action()
            if isinstance(node, (_End, _Else)):
                raise self.error(f"unexpected {{{{{'end' if isinstance(node, _End) else 'else'}}}}}")
            root.nodes.append(node)
        self._add(n.Tree(self.name, self.name, self.text, root))
        return self.trees

    def _add(self, tree: n.Tree) -> None:
        existing = self.trees.get(tree.name)
        if existing is None or _is_empty(existing.root):
            self.trees[tree.name] = tree
        elif not _is_empty(tree.root):
            raise self.error(f"template: multiple definition of template {tree.name!r}".replace("'", '"'))

    def _template_name(self, tok: Token, context: str) -> str:
        if tok.kind not in ("STRING", "RAW"):
            raise self.unexpected(tok, context)
        try:
            return unquote(tok.value)
        except ValueError:
            raise self.error(f"invalid syntax: {tok.value}") from None

    def _definition(self) -> None:
        name = self._template_name(self.next_non_space(), "define clause")
        self.expect("RDELIM", "define clause")
        saved_vars, self.vars = self.vars, ["$"]
        body, end = self._item_list()
        self.vars = saved_vars
        if not isinstance(end, _End):
            raise self.error("unexpected {{else}} in define clause")
        self._add(n.Tree(name, self.name, self.text, body))

    def _item_list(self) -> tuple[n.ListNode, n.Node]:
        body = n.ListNode(self.peek_non_space().pos)
        while self.peek_non_space().kind != "EOF":
            node = self._text_or_action()
            if isinstance(node, (_End, _Else)):
                return body, node
            body.nodes.append(node)
        raise self.error("unexpected EOF")

    def _text_or_action(self) -> n.Node:
        tok = self.next_non_space()
        if tok.kind == "TEXT":
            return n.TextNode(tok.pos, tok.value)
        if tok.kind == "LDELIM":
            return self._action()
        if tok.kind == "COMMENT":
            return n.CommentNode(tok.pos, tok.value)
        raise self.unexpected(tok, "input")

    # actions ------------------------------------------------------------------------------------------
    def _action(self) -> n.Node:
        tok = self.next_non_space()
        if tok.kind == "KEYWORD":
            word = tok.value
            if word in ("if", "with", "range"):
                return self._branch(word)
            if word == "end":
                return _End(self.expect("RDELIM", "end").pos)
            if word == "else":
                peek = self.peek_non_space()
                if peek.kind == "KEYWORD" and peek.value in ("if", "with"):
                    return _Else(peek.pos)
                return _Else(self.expect("RDELIM", "else").pos)
            if word in ("break", "continue"):
                after = self.next_non_space()
                if after.kind != "RDELIM":
                    raise self.unexpected(after, "{{" + word + "}}")
                if self.range_depth == 0:
                    raise self.error(f"{{{{{word}}}}} outside {{{{range}}}}")
                return n.BreakNode(tok.pos, tok.line) if word == "break" else n.ContinueNode(tok.pos, tok.line)
            if word == "template":
                return self._template_call()
            if word == "block":
                return self._block()
        self.backup()
        first = self.peek()
        return n.ActionNode(first.pos, first.line, self._pipeline("command", "RDELIM"))

    def _branch(self, keyword: str) -> n.Node:
        depth = len(self.vars)
        pipe = self._pipeline(keyword, "RDELIM")
        if keyword == "range":
            self.range_depth += 1
        body, end = self._item_list()
        if keyword == "range":
            self.range_depth -= 1
        else_body = None
        if isinstance(end, _Else):
            peek = self.peek()
            if keyword in ("if", "with") and peek.kind == "KEYWORD" and peek.value == keyword:
                self.next()
                else_body = n.ListNode(end.pos, [self._branch(keyword)])
            else:
                else_body, end = self._item_list()
                if not isinstance(end, _End):
                    raise self.error("expected end; found {{else}}")
        del self.vars[depth:]
        return n.BranchNode(pipe.pos, keyword, pipe.line, pipe, body, else_body)

    def _template_call(self) -> n.Node:
        tok = self.next_non_space()
        name = self._template_name(tok, "template clause")
        pipe = None
        if self.next_non_space().kind != "RDELIM":
            self.backup()
            pipe = self._pipeline("template clause", "RDELIM")
        return n.TemplateNode(tok.pos, tok.line, name, pipe)

    def _block(self) -> n.Node:
        tok = self.next_non_space()
        name = self._template_name(tok, "block clause")
        pipe = self._pipeline("block clause", "RDELIM")
        saved_vars, saved_depth = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        body, end = self._item_list()
        self.vars, self.range_depth = saved_vars, saved_depth
        if not isinstance(end, _End):
            raise self.error("unexpected {{else}} in block clause")
        self._add(n.Tree(name, self.name, self.text, body))
        return n.TemplateNode(tok.pos, tok.line, name, pipe)

    # pipelines ----------------------------------------------------------------------------------------
    def _declarations(self, pipe: n.PipeNode, context: str) -> None:
        while True:
            tok = self.peek_non_space()
            if tok.kind != "VAR":
                return
            start = self.i
            var = self.next_non_space()
            after = self.peek_non_space()
            if after.kind in ("DECLARE", "ASSIGN"):
                self.next_non_space()
                pipe.is_assign = after.kind == "ASSIGN"
                pipe.decl.append(n.VariableNode(var.pos, [var.value]))
                if after.kind == "DECLARE":
                    self.vars.append(var.value)
                elif var.value not in self.vars:
                    raise self.error(f'undefined variable "{var.value}"')
                return
            if after.kind == "COMMA":
                self.next_non_space()
                pipe.decl.append(n.VariableNode(var.pos, [var.value]))
                self.vars.append(var.value)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in ("VAR", "RDELIM", "RPAREN"):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            self.i = start
            return

    def _pipeline(self, context: str, end: str) -> n.PipeNode:
        first = self.peek_non_space()
        pipe = n.PipeNode(first.pos, first.line)
        self._declarations(pipe, context)
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                if not pipe.cmds:
                    raise self.error(f"missing value for {context}")
                for i, cmd in enumerate(pipe.cmds[1:]):
                    if isinstance(cmd.args[0], (n.BoolNode, n.DotNode, n.NilNode, n.NumberNode, n.StringNode)):
                        raise self.error(f"non executable command in pipeline stage {i + 2}")
                return pipe
            if tok.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self._command())
            else:
                raise self.unexpected(tok, context)

    def _command(self) -> n.CommandNode:
        cmd = n.CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self._operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "SPACE":
                continue
            if tok.kind in ("RDELIM", "RPAREN"):
                self.backup()
            elif tok.kind != "PIPE":
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def _operand(self) -> n.Node | None:
        node = self._term()
        if node is None or self.peek().kind != "FIELD":
            return node
        pos = self.peek().pos
        fields = []
        while self.peek().kind == "FIELD":
            fields.append(self.next().value[1:])
        if isinstance(node, n.FieldNode):
            return n.FieldNode(pos, node.idents + fields)
        if isinstance(node, n.VariableNode):
            return n.VariableNode(pos, node.idents + fields)
        if isinstance(node, (n.BoolNode, n.StringNode, n.NumberNode, n.NilNode, n.DotNode)):
            raise self.error(f'unexpected . after term "{node.go_string()}"')
        return n.ChainNode(pos, node, fields)

    def _term(self) -> n.Node | None:
        tok = self.next_non_space()
        kind = tok.kind
        if kind == "IDENT":
            if tok.value not in self.funcs:
                raise self.error(f'function "{tok.value}" not defined')
            return n.IdentifierNode(tok.pos, tok.value)
        if kind == "DOT":
            return n.DotNode(tok.pos)
        if kind == "NIL":
            return n.NilNode(tok.pos)
        if kind == "VAR":
            parts = tok.value.split(".")
            if parts[0] not in self.vars:
                raise self.error(f'undefined variable "{parts[0]}"')
            return n.VariableNode(tok.pos, parts)
        if kind == "FIELD":
            return n.FieldNode(tok.pos, [tok.value[1:]])
        if kind == "BOOL":
            return n.BoolNode(tok.pos, tok.value == "true")
        if kind in ("NUMBER", "CHAR"):
            return self._number(tok)
        if kind == "LPAREN":
            return self._pipeline("parenthesized pipeline", "RPAREN")
        if kind in ("STRING", "RAW"):
            try:
                return n.StringNode(tok.pos, tok.value, unquote(tok.value))
            except ValueError:
                raise self.error("invalid syntax") from None
        self.backup()
        return None

    def _number(self, tok: Token) -> n.NumberNode:
        text = tok.value
        node = n.NumberNode(tok.pos, text)
        if tok.kind == "CHAR":
            try:
                value = unquote('"' + text[1:-1].replace('"', '\\"') + '"') if text != "'\"'" else '"'
            except ValueError:
                raise self.error(f"malformed character constant: {text}") from None
            if len(value) != 1:
                raise self.error(f"malformed character constant: {text}")
            node.is_char = node.is_int = node.is_float = True
            node.int_value = ord(value)
            node.float_value = float(node.int_value)
            return node
        body = text.lstrip("+-")
        try:
            number = int(body.replace("_", ""), 8) if re.fullmatch(r"0[0-7_]+", body) else int(body, 0)
            node.is_int, node.int_value = True, -number if text.startswith("-") else number
            node.is_float, node.float_value = True, float(node.int_value)
            return node
        except ValueError:
            pass
        try:
            fvalue = float.fromhex(text) if body[:2].lower() == "0x" else float(text)
        except ValueError:
            raise self.error(f"illegal number syntax: {text!r}".replace("'", '"')) from None
        node.is_float, node.float_value = True, fvalue
        if fvalue == int(fvalue) if fvalue == fvalue and abs(fvalue) != float("inf") else False:
            node.is_int, node.int_value = True, int(fvalue)
        return node


def _is_empty(node: n.Node) -> bool:
    if isinstance(node, n.ListNode):
        return all(_is_empty(c) for c in node.nodes)
    if isinstance(node, n.TextNode):
        return not node.text.strip()
    return isinstance(node, n.CommentNode)


def parse(name: str, text: str, funcs: set[str]) -> dict[str, n.Tree]:
    """All templates in `text`: the main one under `name`, plus each {{define}} and {{block}}."""
    return Parser(name, text, funcs).parse()
