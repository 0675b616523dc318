"""Render a resource's Jinja2 template with the confd functions; failures name the template, line and key.

confd's worst habit was a bare "key does not exist" with no hint where; here every render error says which
template and which line asked for what, so the operator fixes it in one look.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import jinja2

from portico.confsync.functions import MissingKeyError, Store, template_functions
from portico.confsync.resources import TemplateResource


class RenderError(RuntimeError):
    """A template failed to render; `str()` is one clear line."""

    def __init__(self, message: str, *, key: str | None = None, template: str = "", line: int | None = None):
        super().__init__(message)
        self.key, self.template, self.line = key, template, line


def _template_line(exc: BaseException, template_path: str) -> int | None:
    """The deepest traceback frame inside the template file: Jinja2 maps those frames to template lines."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == template_path:
            line = frame.lineno
    return line


class Renderer:
    """One Jinja2 environment per templates folder; templates are re-read when they change on disk."""

    def __init__(self, templates_dir: Path):
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir)), undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True, autoescape=False, auto_reload=True,
        )

    def render(self, resource: TemplateResource, keys: dict[str, str]) -> str:
        store = Store(keys)
        where = str(resource.src)
        try:
            template = self.env.get_template(self._name(resource))
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"template {exc.filename or where} line {exc.lineno}: syntax error: {exc.message}",
                              template=where, line=exc.lineno) from None
        except jinja2.TemplateNotFound:
            raise RenderError(f"template {where} not found (resource {resource.source_file})",
                              template=where) from None
        context: dict[str, Any] = dict(template_functions(store))
        context["vars"] = resource.vars
        try:
            return template.render(context)
        except MissingKeyError as exc:
            line = _template_line(exc, template.filename or where)
            raise RenderError(f"template {where} line {line}: key {exc.key!r} not found "
                              f"(under prefix {resource.prefix!r})", key=exc.key, template=where,
                              line=line) from None
        except Exception as exc:  # a template bug must not take other resources down
            line = _template_line(exc, template.filename or where)
            raise RenderError(f"template {where} line {line}: {type(exc).__name__}: {exc}",
                              template=where, line=line) from None

    def _name(self, resource: TemplateResource) -> str:
        root = Path(self.env.loader.searchpath[0]).resolve()  # type: ignore[union-attr]
        try:
            return resource.src.relative_to(root).as_posix()
        except ValueError:
            raise RenderError(f"template {resource.src} is outside {root}", template=str(resource.src)) from None
