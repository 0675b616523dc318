"""ProxyContext.with_scheme: the TLS listener's view shares everything but its scheme and its router."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from portico.config.settings import RouterConfig
from portico.proxy import context
from portico.proxy.admission import Admission
from portico.proxy.context import SHARED_FIELDS, ProxyContext
from portico.routes.table import RouteTable
from portico.state import RouterState


def _fields_set_by_init() -> set[str]:
    """Every `self.<name> = ...` in ProxyContext.__init__, read from the source (a compiled class has no
    __dict__ to list)."""
    tree = ast.parse((Path(context.__file__).parent / "context.py").read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ProxyContext"]
    (init,) = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    targets = [t for node in ast.walk(init) if isinstance(node, ast.Assign) for t in node.targets]
    targets += [node.target for node in ast.walk(init) if isinstance(node, ast.AnnAssign)]
    return {t.attr for t in targets
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}


def test_shared_fields_name_every_attribute_but_scheme_and_router() -> None:
    assert set(SHARED_FIELDS) == _fields_set_by_init() - {"scheme", "router"}


def test_with_scheme_shares_everything_but_the_scheme_and_router() -> None:
    loop = asyncio.new_event_loop()
    try:
        plain = ProxyContext(RouterConfig(), RouteTable(), RouterState(), loop)
        plain.admission = Admission(loop, 10)   # set by the server before any connection is accepted
        tls = plain.with_scheme(b"https")
        assert (plain.scheme, tls.scheme) == (b"http", b"https")
        for name in SHARED_FIELDS:
            assert getattr(tls, name) == getattr(plain, name), name
        assert tls.connector is plain.connector and tls.observe is plain.observe and tls.table is plain.table
        assert tls.router is not plain.router and tls.router.ctx is tls
        tls.connections.add("x")        # one set of open connections for both listeners (sweep, drain)
        assert "x" in plain.connections
    finally:
        loop.close()
