"""Render a resource's template, Go (confd's own syntax) or Jinja2, with the confd functions.

Go templates (`.tmpl` and anything not Jinja2) run on portico.confsync.gotemplate with confd's function map,
so an existing confd template writes the same bytes; Jinja2 (`.j2`, or `engine = "jinja2"`) keeps Portico's
earlier syntax. Every render error says which template and which line asked for what, so the operator fixes it
in one look.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path
from typing import Any

import jinja2

from portico.confsync import confd_funcs
from portico.confsync.functions import MissingKeyError, Store, template_functions
from portico.confsync.gotemplate import MISSING, GoTemplate, TemplateExecError, TemplateSyntaxError
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
        if resource.engine == "go":
            return render_go(resource, keys)
        return self.render_jinja(resource, keys)

    def render_jinja(self, resource: TemplateResource, keys: dict[str, str]) -> str:
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


def render_go(resource: TemplateResource, keys: dict[str, str]) -> str:
    """confd's way: the template named after the file's base name, executed with nil data (or, a Portico
    addition, with the resource's [template.vars] table as dot when it has one)."""
    where = str(resource.src)
    try:
        raw = resource.src.read_bytes()
    except FileNotFoundError:
        raise RenderError(f"template {where} not found (resource {resource.source_file})", template=where) from None
    text = raw.decode("utf-8", errors="surrogateescape")
    funcs = confd_funcs.confd_funcs(confd_funcs.Store(keys))
    try:
        template = GoTemplate(resource.src.name, text, funcs)
    except TemplateSyntaxError as exc:
        hint = ""
        if "{%" in text or re.search(r"\{\{\s*\w+\(", text):
            hint = (" (this looks like a Jinja2 template: name it .j2 or set engine = \"jinja2\" in "
                    f"{resource.source_file.name})")
        raise RenderError(f"template {where} line {exc.line}: syntax error: {exc}{hint}", template=where,
                          line=exc.line) from None
    try:
        out = template.execute(dict(resource.vars) if resource.vars else MISSING)
    except TemplateExecError as exc:
        if isinstance(exc.cause, confd_funcs.KeyNotFound):
            key = exc.cause.key
            raise RenderError(f"template {where} line {exc.line}: key {key!r} not found (under prefix "
                              f"{resource.prefix!r}): {exc}", key=key, template=where, line=exc.line) from None
        raise RenderError(f"template {where} line {exc.line}: {exc}", template=where, line=exc.line) from None
    return out
