"""Split a Go template into tokens: text, `{{ }}` actions with trim markers, comments, operands.

Follows text/template/parse's lexer: `{{- ` trims the whitespace before the action, ` -}}` the whitespace
after it (the dash must touch the delimiter and be followed/preceded by a space); `{{/* */}}` is a comment.
"""

from __future__ import annotations

from dataclasses import dataclass

from portico.confsync.gotemplate.errors import TemplateSyntaxError

SPACE_CHARS = " \t\r\n"
KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with"}


@dataclass(slots=True)
class Token:
    kind: str       # TEXT COMMENT LDELIM RDELIM SPACE IDENT FIELD VAR STRING RAW NUMBER CHAR BOOL PIPE
    value: str      # LPAREN RPAREN DECLARE ASSIGN COMMA DOT NIL KEYWORD EOF
    pos: int        # offset of the token in the template text
    line: int

    def __repr__(self) -> str:
        return f"{self.kind}({self.value!r})"


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


class Lexer:
    """Produces the whole token list at once (templates are small)."""

    def __init__(self, name: str, text: str, left: str = "{{", right: str = "}}"):
        self.name, self.text, self.left, self.right = name, text, left, right
        self.tokens: list[Token] = []
        self.paren_depth = 0

    def line_at(self, pos: int) -> int:
        return 1 + self.text.count("\n", 0, pos)

    def error(self, pos: int, message: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(f"template: {self.name}:{self.line_at(pos)}: {message}")

    def emit(self, kind: str, value: str, pos: int) -> None:
        self.tokens.append(Token(kind, value, pos, self.line_at(pos)))

    def tokenize(self) -> list[Token]:
        text, pos, trim_next = self.text, 0, False
        while True:
            start = text.find(self.left, pos)
            end = len(text) if start < 0 else start
            chunk_start = pos
            if trim_next:
                while chunk_start < end and text[chunk_start] in SPACE_CHARS:
                    chunk_start += 1
            trim_left = start >= 0 and text[start + len(self.left):start + len(self.left) + 2][:1] == "-" \
                and text[start + len(self.left) + 1:start + len(self.left) + 2] in tuple(SPACE_CHARS)
            chunk_end = end
            if trim_left:
                while chunk_end > chunk_start and text[chunk_end - 1] in SPACE_CHARS:
                    chunk_end -= 1
            if chunk_end > chunk_start:
                self.emit("TEXT", text[chunk_start:chunk_end], chunk_start)
            if start < 0:
                self.emit("EOF", "", len(text))
                return self.tokens
            pos, trim_next = self._action(start, trim_left)

    def _at_right(self, pos: int) -> tuple[bool, bool]:
        text = self.text
        if text[pos:pos + 1] in tuple(SPACE_CHARS) and text[pos + 1:pos + 2] == "-" \
                and text.startswith(self.right, pos + 2):
            return True, True
        return text.startswith(self.right, pos), False

    def _action(self, start: int, trim_left: bool) -> tuple[int, bool]:
        """Lex one action starting at its left delimiter; returns (position after it, trim right)."""
        text = self.text
        pos = start + len(self.left) + (2 if trim_left else 0)
        if text.startswith("/*", pos):
            close = text.find("*/", pos + 2)
            if close < 0:
                raise self.error(start, "unclosed comment")
            after = close + 2
            delim, trim = self._at_right(after)
            if not delim:
                raise self.error(start, "comment ends before closing delimiter")
            self.emit("COMMENT", text[pos:after], pos)
            return after + (2 if trim else 0) + len(self.right), trim
        self.emit("LDELIM", self.left, start)
        self.paren_depth = 0
        while True:
            delim, trim = self._at_right(pos)
            if delim and self.paren_depth == 0:
                self.emit("RDELIM", self.right, pos + (2 if trim else 0))
                return pos + (2 if trim else 0) + len(self.right), trim
            if delim:
                raise self.error(pos, "unclosed left paren")
            if pos >= len(text):
                raise self.error(start, "unclosed action")
            pos = self._operand(pos)

    def _operand(self, pos: int) -> int:
        text = self.text
        ch = text[pos]
        if ch in SPACE_CHARS:
            end = pos
            while end < len(text) and text[end] in SPACE_CHARS and not self._at_right(end)[1]:
                end += 1
            self.emit("SPACE", text[pos:end], pos)
            return end
        if text.startswith(":=", pos):
            self.emit("DECLARE", ":=", pos)
            return pos + 2
        if ch == "=":
            self.emit("ASSIGN", "=", pos)
            return pos + 1
        single = {"|": "PIPE", ",": "COMMA"}
        if ch in single:
            self.emit(single[ch], ch, pos)
            return pos + 1
        if ch == "(":
            self.paren_depth += 1
            self.emit("LPAREN", ch, pos)
            return pos + 1
        if ch == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                raise self.error(pos, "unexpected right paren")
            self.emit("RPAREN", ch, pos)
            return pos + 1
        if ch == '"':
            return self._quoted(pos, '"', "STRING")
        if ch == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise self.error(pos, "unterminated raw quoted string")
            self.emit("RAW", text[pos:end + 1], pos)
            return end + 1
        if ch == "'":
            return self._quoted(pos, "'", "CHAR")
        if ch == "$":
            end = pos + 1
            while end < len(text) and _is_alnum(text[end]):
                end += 1
            self.emit("VAR", text[pos:end], pos)
            return end
        if ch == "." and not text[pos + 1:pos + 2].isdigit():
            end = pos + 1
            while end < len(text) and _is_alnum(text[end]):
                end += 1
            if end == pos + 1:
                self.emit("DOT", ".", pos)
            else:
                self.emit("FIELD", text[pos:end], pos)
            return end
        if ch.isdigit() or ch == "." or (ch in "+-" and (text[pos + 1:pos + 2].isdigit()
                                                         or text[pos + 1:pos + 2] == ".")):
            end = pos + 1
            while end < len(text) and (_is_alnum(text[end]) or text[end] == "."
                                       or (text[end] in "+-" and text[end - 1] in "eEpP")):
                end += 1
            self.emit("NUMBER", text[pos:end], pos)
            return end
        if _is_alnum(ch):
            end = pos
            while end < len(text) and _is_alnum(text[end]):
                end += 1
            word = text[pos:end]
            if word in ("true", "false"):
                self.emit("BOOL", word, pos)
            elif word == "nil":
                self.emit("NIL", word, pos)
            elif word in KEYWORDS:
                self.emit("KEYWORD", word, pos)
            else:
                self.emit("IDENT", word, pos)
            return end
        raise self.error(pos, f"unexpected {ch!r} in command".replace("'", '"', 2) if ch != '"' else
                         "unexpected quote in command")

    def _quoted(self, pos: int, quote: str, kind: str) -> int:
        text = self.text
        end = pos + 1
        while end < len(text):
            ch = text[end]
            if ch == "\\":
                end += 2
                continue
            if ch == "\n":
                break
            if ch == quote:
                self.emit(kind, text[pos:end + 1], pos)
                return end + 1
            end += 1
        raise self.error(pos, "unterminated quoted string" if quote == '"' else "unterminated character constant")
