"""Build step for the compiled hot path: Cython compiles the modules portico/_compiled.py lists, in place.

Everything else about the package is in pyproject.toml. The build is optional by design: without Cython or a
C compiler, or when a module fails to compile, the install still succeeds with the pure-Python modules, and
the build says so loudly (the router says it again at start). Each extension is linked with a stamp of the
source it came from, and a build skips a module whose extension already carries the current stamp, so
`python setup.py build_ext --inplace` (what ./scripts/test runs) rebuilds only what changed.
"""

from __future__ import annotations

import filecmp
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_portico_compiled", ROOT / "portico" / "_compiled.py")
assert _spec is not None and _spec.loader is not None
compiled = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = compiled   # dataclasses look their module up by name
_spec.loader.exec_module(compiled)

STAMP_DIR = Path("build", "portico-stamps")     # relative: setuptools builds from the project directory
CYTHON_DIR = Path("build", "cython")
DIRECTIVES = {"language_level": "3"}


def _warn(text: str) -> None:
    bar = "!" * 100
    print(f"\n{bar}\nWARNING (portico build): {text}\n"
          f"Portico will run its pure-Python modules (slower; everything works).\n{bar}\n", file=sys.stderr)


class OptionalCythonBuild(build_ext):
    """Cythonizes and compiles each listed module unless its extension is already fresh; never fails the build.

    With --inplace (and `pip install -e .`) setuptools builds under build/ and copies into the tree; both copies
    are checked, a stale one is never left behind, and a loaded extension is replaced, never overwritten.
    """

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:          # pip gives no -j: compile the C of several modules at once anyway
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        self._into_tree = bool(self.inplace)
        try:
            import Cython  # noqa: F401
        except ImportError:
            _warn("Cython is not installed, so nothing was compiled.")
            return
        try:
            super().run()
        except Exception as exc:   # no compiler at all (DistutilsPlatformError), or anything else in the build
            _warn(f"the compiled modules could not be built: {exc}")

    def build_extensions(self) -> None:
        """Cython for the modules that changed (in worker processes), then their C compiles (in parallel)."""
        stale = [ext for ext in self.extensions if not self._fresh(ext)]
        self._ready = self._cythonize(stale)
        super().build_extensions()

    def _fresh(self, ext: Extension) -> bool:
        """True when the built extension carries the current source's stamp (and -f was not given)."""
        digest = compiled.source_digest(ROOT / ext.sources[0])
        built = Path(self.get_ext_fullpath(ext.name))
        copies = [built, ROOT / self.get_ext_filename(ext.name)] if self._into_tree else [built]
        fresh = [path.exists() and compiled.read_stamp(path) == digest for path in copies]
        if all(fresh[1:]) and not self.force:
            if not fresh[0]:                       # build/ was cleaned: the tree's copy is the build
                built.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(copies[1], built)
            print(f"portico build: {ext.name} is up to date", file=sys.stderr)
            return True
        for path in copies:
            if path.exists() and compiled.read_stamp(path) != digest:
                path.unlink()                      # never leave a stale extension, even if this build fails
        return False

    def _cythonize(self, exts: list[Extension]) -> set[str]:
        """Give each extension its C sources (the Cython output and its stamp); the names that got them."""
        if not exts:
            return set()
        from Cython.Build import cythonize

        stamps = {}
        for ext in exts:
            stamps[ext.name] = STAMP_DIR / (ext.name + ".c")
            stamps[ext.name].parent.mkdir(parents=True, exist_ok=True)
            stamps[ext.name].write_text(compiled.stamp_c_source(ext.name, compiled.source_digest(ROOT /
                                                                                                ext.sources[0])))
        def run(group: list[Extension], processes: int) -> list[Extension]:
            return cythonize([Extension(ext.name, [ext.sources[0]]) for ext in group], build_dir=str(CYTHON_DIR),
                             compiler_directives=DIRECTIVES, include_path=["."], force=True, quiet=True,
                             nthreads=processes)

        try:
            done = run(exts, min(len(exts), os.cpu_count() or 1))
        except Exception:                          # one failed: find which, one at a time, and keep the others
            done = []
            for ext in exts:
                try:
                    done += run([ext], 0)
                except Exception:
                    pass
        by_name = {ext.name: ext for ext in exts}
        for result in done:
            by_name[result.name].sources = [*result.sources, str(stamps[result.name])]
        for name in sorted(set(by_name) - {result.name for result in done}):
            _warn(f"{name} could not be compiled by Cython (its errors are printed above)")
        return {result.name for result in done}

    def build_extension(self, ext: Extension) -> None:
        if ext.name not in self._ready:
            return
        try:
            super().build_extension(ext)
        except Exception as exc:
            _warn(f"{ext.name} could not be compiled: {exc}")

    def copy_file(self, infile, outfile, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Into the tree: skip an identical file, and unlink before copying (a running router keeps its inode)."""
        if os.path.exists(outfile):
            if filecmp.cmp(infile, outfile, shallow=False):
                return outfile, False
            os.unlink(outfile)
        return super().copy_file(infile, outfile, *args, **kwargs)


def _extensions() -> list[Extension]:
    # optional: setuptools then copies into the tree only the extensions that were built
    return [Extension(name, [compiled.source_path(name, ROOT / "portico").relative_to(ROOT).as_posix()],
                      optional=True)
            for name in compiled.COMPILED_MODULES]


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalCythonBuild})
