"""The compiled hot path as built in this tree (setup.py, portico/_compiled.py), checked in child processes:
built where a compiler is, never stale, forced pure by the env var, a failed build falls back loudly, and the
fast unit layer passes on the pure modules too (the default run covers the compiled ones)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portico._compiled import COMPILED_MODULES, PURE_ENV, select

REPO = Path(__file__).resolve().parent.parent
HAVE_COMPILER = bool(shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc"))
IMPORT_ALL = f"import importlib; print(*[importlib.import_module(m).__file__ for m in {COMPILED_MODULES!r}], sep=' ')"


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != PURE_ENV} | env
    environment["PYTHONPATH"] = str(cwd)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def tree_copy(tmp_path) -> Path:
    """A copy of the package as built here (extensions included), to edit without touching the real tree."""
    if not select(environ={}).compiled:
        pytest.skip("nothing compiled in this tree")
    copy = tmp_path / "tree"
    shutil.copytree(REPO / "portico", copy / "portico", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, copy / name)
    return copy


@pytest.mark.skipif(not HAVE_COMPILER, reason="no C compiler on this machine: pure Python is expected")
def test_compiled_modules_are_built_fresh_and_loaded():
    chosen = select(environ={})
    assert chosen.compiled == COMPILED_MODULES, chosen.reason
    files = _python(IMPORT_ALL, REPO).stdout.split()
    assert len(files) == len(COMPILED_MODULES) and all(f.endswith(".so") for f in files), files


def test_env_var_forces_the_pure_modules(tree_copy):
    run = _python(IMPORT_ALL + "\nfrom portico._compiled import selection; print(selection().describe())",
                  tree_copy, **{PURE_ENV: "1"})
    files = run.stdout.split()[:len(COMPILED_MODULES)]
    assert all(f.endswith(".py") for f in files), run.stdout + run.stderr
    assert f"pure Python ({PURE_ENV}=1 forces" in run.stdout and "WARNING" not in run.stderr


def test_an_edited_source_is_never_run_compiled(tree_copy):
    edited = tree_copy / "portico" / "proxy" / "headers.py"
    edited.write_text(edited.read_text() + "\nEDITED_AFTER_THE_BUILD = True\n")
    run = _python(IMPORT_ALL + "\nimport logging; logging.basicConfig()"
                  "\nfrom portico.router_app import _log_implementation; _log_implementation()", tree_copy)
    assert run.returncode == 0, run.stderr
    assert all(f.endswith(".py") for f in run.stdout.split()), run.stdout
    # said once, by the router's start line, after logging is set up (so in the configured format);
    # nothing is logged at import, where it would bypass the log format
    assert "using the pure-Python modules" not in run.stderr and run.stderr.count("WARNING") == 1, run.stderr
    assert "WARNING:portico.router:implementation: pure Python (stale compiled module portico.proxy.headers" \
        in run.stderr


@pytest.mark.timeout(300)
def test_a_failed_build_falls_back_loudly_and_leaves_nothing_stale(tree_copy):
    edited = tree_copy / "portico" / "proxy" / "headers.py"
    edited.write_text(edited.read_text() + "\nEDITED_AFTER_THE_BUILD = True\n")
    env = {k: v for k, v in os.environ.items() if k != PURE_ENV} | {"CC": "/bin/false"}
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tree_copy, env=env,
                           capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stderr
    assert "WARNING (portico build): portico.proxy.headers could not be compiled" in build.stderr
    assert not list((tree_copy / "portico" / "proxy").glob("headers.*.so"))
    run = _python("from portico._compiled import selection; print(selection().describe())", tree_copy)
    assert "pure Python (no compiled modules built" in run.stdout or "not built: portico.proxy.headers" \
        in run.stdout, run.stdout


@pytest.mark.timeout(300)
def test_the_unit_layer_passes_on_the_pure_modules():
    env = {**os.environ, PURE_ENV: "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-m", "unit"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "[100%]" in run.stdout   # exit 0 and a full run (pytest exits 5 when nothing ran)


def test_an_extension_whose_source_is_gone_is_not_loaded(tree_copy):
    (tree_copy / "portico" / "proxy" / "headers.py").unlink()    # as after a module is renamed
    run = _python("import portico.proxy.headers", tree_copy)
    assert run.returncode != 0
    assert "portico.proxy.headers: only a built extension is left" in run.stderr, run.stderr
