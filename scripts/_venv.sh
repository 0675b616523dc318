# Sourced by scripts/up and scripts/test: make .venv (once) and install Portico into it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PORTICO_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
stamp="$VENV/.portico-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT[servers,test,bench,kube]"
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
# The compiled hot path (setup.py, portico/_compiled.py): rebuild in place only the modules whose .py/.pxd
# changed since they were built (well under a second when none did), then say loudly if pure Python will run.
build_log="$VENV/.portico-build.log"
if ! (cd "$ROOT" && "$VENV/bin/python" setup.py -q build_ext --inplace -j 2) >"$build_log" 2>&1; then
  cat "$build_log" >&2
fi
"$VENV/bin/python" -c 'import sys, portico._compiled as c; sys.exit(c.report())' || echo "  (the build's output: $build_log)" >&2
