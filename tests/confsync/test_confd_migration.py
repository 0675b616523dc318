"""A confdir as a confd deployment has it (confd.toml, conf.d/*.toml, Go templates) renders byte for byte the
files confd writes. The expected files in confd_migration/expect/ were written by hand from confd's and Go's
semantics (memkv sort orders, trim markers, float64 JSON numbers printing as %v does), not produced by Portico.
The command line is confd's own spelling."""

from __future__ import annotations

import shutil
from pathlib import Path

from confsync_helpers import run_confsync

HERE = Path(__file__).parent / "confd_migration"
KEYS = {
    "/myapp/subdomain": "myapp",
    "/myapp/upstream/app2": "10.0.1.100:80",
    "/myapp/upstream/app1": "10.0.1.101:80",
    "/services/web": '{"host": "10.0.0.5", "port": 8080, "weight": 10}',
    "/services/api": '{"host": "10.0.0.6", "port": 9090, "weight": 5, "backup": true}',
    "/services/batch": '{"host": "10.0.0.7", "port": 1234567, "weight": 1.5}',
    "/settings/maxconn": "2000",
    "/settings/mode": "http",
}


def _copy_confdir(tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "out"
    out.mkdir()
    confdir = tmp_path / "confd"
    shutil.copytree(HERE / "confdir", confdir)
    for toml in (confdir / "conf.d").glob("*.toml"):   # the deployment's /etc paths, moved under tmp
        toml.write_text(toml.read_text().replace("/etc/confd-demo", str(out)))
    return confdir, out


def test_confd_confdir_renders_byte_identical_files(tmp_path, etcd, etcd_server):
    for key, value in KEYS.items():
        etcd.put(key, value)
    confdir, out = _copy_confdir(tmp_path)
    proc = run_confsync("-confdir", str(confdir), "-node", etcd_server.url, "-onetime", "-log-level", "debug")
    assert proc.returncode == 0, proc.stderr
    for name in ("myapp.conf", "services.cfg", "app.ini"):
        assert (out / name).read_bytes() == (HERE / "expect" / name).read_bytes(), name
    assert (out / "myapp.conf").stat().st_mode & 0o777 == 0o644
    assert (out / "app.ini").stat().st_mode & 0o777 == 0o600
    assert (out / "nginx-reloaded").exists(), "reload_cmd ran after the check passed"

    # -noop after a change: a diff on stdout, files untouched, exit 0
    etcd.put("/settings/mode", "tcp")
    before = (out / "services.cfg").read_bytes()
    proc = run_confsync("-confdir", str(confdir), "-backend", "etcdv3", "-node", etcd_server.url, "-onetime",
                        "-noop")
    assert proc.returncode == 0, proc.stderr
    assert "-mode http" in proc.stdout and "+mode tcp" in proc.stdout
    assert (out / "services.cfg").read_bytes() == before

    # one resource failing (its key vanished) does not stop the others; exit 1 like confd -onetime
    etcd.delete_prefix("/myapp/subdomain")
    proc = run_confsync("-confdir", str(confdir), "-backend", "etcd", "-node", etcd_server.url, "-onetime")
    assert proc.returncode == 1
    assert "key does not exist: /subdomain" in proc.stderr and "nginx.tmpl" in proc.stderr
    assert (out / "services.cfg").read_text().endswith("mode tcp\n# end -- generated\n")
