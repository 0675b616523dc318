"""deploy/systemd: the traffic node's units pass `systemd-analyze verify` with no finding at all.

systemd-analyze loads the units offline (no running systemd needed): it checks every section and key, the
unit references, and that each Exec* command exists and is executable. The units name Portico's commands under
/opt/portico/bin (the venv docs/hosts.md installs); here that prefix is pointed at this tree's venv, and
/usr/sbin/haproxy at the HAProxy the tests use when the system has none.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portico.stack.binaries import BinaryNotFound, haproxy_binary

UNITS = Path(__file__).resolve().parents[1] / "deploy" / "systemd"
EXPECTED = {"portico-traffic-node.target", "portico-haproxy.service", "portico-confsync.service",
            "portico-router.service", "portico-registrar.service"}


def _installed_copy(tmp_path: Path) -> list[Path]:
    venv_bin = str(Path(sys.executable).parent) + "/"
    try:
        haproxy = haproxy_binary()
    except BinaryNotFound:
        pytest.skip("no haproxy binary")
    out = []
    for unit in sorted(UNITS.iterdir()):
        text = unit.read_text().replace("/opt/portico/bin/", venv_bin)
        if not Path("/usr/sbin/haproxy").exists():
            text = text.replace("/usr/sbin/haproxy", haproxy)
        path = tmp_path / unit.name
        path.write_text(text)
        out.append(path)
    return out


def _verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is missing: scripts/test installs it (apt-get install systemd)")
    return subprocess.run([tool, "verify", "--man=no", *map(str, paths)], capture_output=True, text=True,
                          timeout=60)


def test_traffic_node_units_verify_cleanly(tmp_path):
    assert {p.name for p in UNITS.iterdir()} == EXPECTED
    result = _verify(_installed_copy(tmp_path))
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr)


def test_verify_catches_a_mistyped_key_and_a_missing_command(tmp_path):
    """The check above can fail: the same tool flags what a typo in these files would be."""
    router = next(p for p in _installed_copy(tmp_path) if p.name == "portico-router.service")
    router.write_text(router.read_text().replace("KillSignal=", "KillSignall=")
                      .replace(str(Path(sys.executable).parent) + "/portico", "/nonexistent/portico"))
    result = _verify([router])
    assert "Unknown key 'KillSignall'" in result.stderr
    assert result.returncode != 0 and "/nonexistent/portico" in result.stderr
