# Sourced by scripts/test: Debian packages the tests' real servers need, installed when missing.
# redis-server: the redis confsync backend's tests; zookeeper (+ Java): the zookeeper backend's tests;
# chromium: the dashboard's browser test (driven by Playwright, which downloads no browser of its own);
# tmux: `portico top` tested in a real terminal.
_portico_apt_install() {
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: please install Debian packages: $*" >&2
    return 0
  fi
  apt-get install -y -q -o DPkg::Lock::Timeout=600 "$@" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q -o DPkg::Lock::Timeout=600 "$@" >/dev/null; } \
    || echo "scripts/test: could not install $*; their tests will fail" >&2
}
_portico_missing=()
command -v redis-server >/dev/null 2>&1 || _portico_missing+=(redis-server)
[ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1 || _portico_missing+=(zookeeper)
command -v chromium >/dev/null 2>&1 || _portico_missing+=(chromium)
command -v tmux >/dev/null 2>&1 || _portico_missing+=(tmux)
if [ "${#_portico_missing[@]}" -gt 0 ]; then
  _portico_apt_install "${_portico_missing[@]}"
fi
# systemd-analyze: tests/test_systemd_units.py verifies deploy/systemd offline (no running systemd needed).
command -v systemd-analyze >/dev/null 2>&1 || _portico_apt_install systemd
