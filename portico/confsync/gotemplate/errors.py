"""The two ways a Go template fails, with Go's message forms.

Parse: `template: NAME:LINE: message`. Execution: `template: NAME:LINE:COL: executing "NAME" at <NODE>:
message`, where COL is the byte offset of the failing node in its line (Go's ErrorContext).
"""

from __future__ import annotations


class TemplateError(Exception):
    """Any Go template failure; `str()` is Go's message."""

    line: int | None = None


class TemplateSyntaxError(TemplateError):
    """The template text does not parse."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


class TemplateExecError(TemplateError):
    """Execution failed; `line`/`column` locate the node, `cause` is the underlying error (e.g. a missing key)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 cause: BaseException | None = None):
        super().__init__(message)
        self.line, self.column, self.cause = line, column, cause
