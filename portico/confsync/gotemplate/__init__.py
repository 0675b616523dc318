"""Go's text/template, in Python: parse once, execute with a function map, get Go's output and Go's errors.

    tmpl = GoTemplate("app.conf.tmpl", text, funcs={"getv": GoFunc("getv", ...)})
    tmpl.execute()            # dot is nil, as confd runs its templates

See docs/confsync.md ("Go templates") for what is implemented and where it knowingly differs from Go.
"""

from __future__ import annotations

from typing import Any

from portico.confsync.gotemplate.builtins import BUILTINS
from portico.confsync.gotemplate.errors import TemplateError, TemplateExecError, TemplateSyntaxError
from portico.confsync.gotemplate.evaluator import execute
from portico.confsync.gotemplate.parser import parse
from portico.confsync.gotemplate.values import MISSING, GoError, GoFunc, GoStruct

__all__ = [
    "MISSING",
    "GoError",
    "GoFunc",
    "GoStruct",
    "GoTemplate",
    "TemplateError",
    "TemplateExecError",
    "TemplateSyntaxError",
]


class GoTemplate:
    """One template file and everything it {{define}}s; parsing checks function names and variables."""

    def __init__(self, name: str, text: str, funcs: dict[str, GoFunc] | None = None):
        self.name = name
        self.funcs = {**BUILTINS, **(funcs or {})}
        self.trees = parse(name, text, set(self.funcs))

    def execute(self, data: Any = MISSING, name: str | None = None) -> str:
        """The output of template `name` (default: the file's own) with `data` as dot."""
        return execute(self.trees, self.funcs, name or self.name, data)
