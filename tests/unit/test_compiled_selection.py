"""The choice between compiled and pure modules (portico/_compiled.py), on small package trees made here:
all or nothing, stale or missing extensions named, the env var, stamps read from the built file's bytes."""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

import pytest

from portico._compiled import (
    COMPILED_MODULES,
    PURE_ENV,
    STAMP_MARKER,
    read_stamp,
    select,
    source_digest,
    source_path,
    stamp_c_source,
)

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
MODULES = ("pkg.fast", "pkg.sub.faster")


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    for init in (root / "__init__.py", root / "sub" / "__init__.py"):
        init.write_text("")
    (root / "fast.py").write_text("def f():\n    return 1\n")
    (root / "sub" / "faster.py").write_text("def g():\n    return 2\n")
    return root


def _build(root: Path, module: str, digest: str | None = None) -> Path:
    """A stand-in extension: bytes around the stamp, as a linker would lay them out."""
    py_file = root.joinpath(*module.split(".")[1:]).with_suffix(".py")
    built = py_file.with_name(py_file.stem + SUFFIX)
    stamp = STAMP_MARKER + (digest or source_digest(py_file)).encode()
    built.write_bytes(b"\x7fELF" + b"\0" * 4096 + stamp + b"\0" * 64)
    return built


def test_all_built_and_fresh_is_compiled(tmp_path):
    root = _tree(tmp_path)
    files = {m: _build(root, m) for m in MODULES}
    chosen = select(MODULES, root, environ={})
    assert chosen.compiled == MODULES and chosen.files == files and chosen.implementation == "compiled"
    assert "2 Cython module(s): pkg.fast, pkg.sub.faster" in chosen.describe()


def test_an_edited_source_makes_everything_pure_and_names_the_module(tmp_path):
    root = _tree(tmp_path)
    for m in MODULES:
        _build(root, m)
    (root / "sub" / "faster.py").write_text("def g():\n    return 3\n")
    chosen = select(MODULES, root, environ={})
    assert chosen.compiled == () and chosen.implementation == "pure"
    assert "pkg.sub.faster" in chosen.reason and "stale" in chosen.reason
    assert chosen.problems == ("pkg.sub.faster: built from another version of faster.py (stale)",)


def test_a_changed_pxd_anywhere_makes_every_module_stale(tmp_path):
    root = _tree(tmp_path)
    for m in MODULES:
        _build(root, m)
    (root / "sub" / "faster.pxd").write_text("cpdef int g()\n")
    chosen = select(MODULES, root, environ={})
    assert chosen.compiled == () and len(chosen.problems) == 2


def test_missing_extensions(tmp_path):
    root = _tree(tmp_path)
    assert "no compiled modules built" in select(MODULES, root, environ={}).reason
    _build(root, "pkg.fast")
    chosen = select(MODULES, root, environ={})
    assert chosen.compiled == () and chosen.reason == "not built: pkg.sub.faster"


def test_the_env_var_forces_pure_and_0_does_not(tmp_path):
    root = _tree(tmp_path)
    for m in MODULES:
        _build(root, m)
    forced = select(MODULES, root, environ={PURE_ENV: "1"})
    assert forced.compiled == () and forced.reason.startswith(f"{PURE_ENV}=1") and forced.problems == ()
    assert select(MODULES, root, environ={PURE_ENV: "0"}).compiled == MODULES


@pytest.mark.parametrize("content", [b"", b"no stamp here", STAMP_MARKER + b"short"])
def test_a_file_without_a_whole_stamp_never_matches(tmp_path, content):
    built = tmp_path / ("x" + SUFFIX)
    built.write_bytes(content)
    stamp = read_stamp(built)
    assert stamp is None or len(stamp) < 64


def test_stamp_c_source_carries_the_digest():
    digest = "ab" * 32
    text = stamp_c_source("portico.proxy.headers", digest)
    assert f'"{STAMP_MARKER.decode()}{digest}"' in text and "portico_stamp_portico_proxy_headers" in text


def test_every_compiled_module_exists_and_is_named_in_the_architecture_doc():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    for module in COMPILED_MODULES:
        assert source_path(module).is_file(), f"{module} is listed in COMPILED_MODULES but has no .py"
        assert f"`{module}`" in doc, (f"{module} is compiled: add it to the 'Compiled today' list in "
                                      "docs/architecture.md (The compiled hot path)")
