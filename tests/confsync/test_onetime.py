"""`portico confsync --onetime` and `--noop` as real processes against a real etcd: files, diffs, exit codes."""

from __future__ import annotations

from confsync_helpers import run_confsync, write_confdir

QUICKSTART_TOML = """\
[template]
src = "myconfig.conf.tmpl"
dest = "{dest}"
keys = [
    "/myapp/database/url",
    "/myapp/database/user",
]
"""

QUICKSTART_TMPL = """\
[myconfig]
database_url = {{getv "/myapp/database/url"}}
database_user = {{getv "/myapp/database/user"}}
"""


def _quickstart(tmp_path, etcd):
    etcd.put("/myapp/database/url", "db.example.com")
    etcd.put("/myapp/database/user", "rob")
    dest = tmp_path / "out" / "myconfig.conf"
    confdir = write_confdir(tmp_path / "confd", {"myconfig": QUICKSTART_TOML.format(dest=dest)},
                            {"myconfig.conf.tmpl": QUICKSTART_TMPL})
    return confdir, dest


def test_onetime_renders_quickstart_and_exits_zero(tmp_path, etcd, etcd_server):
    confdir, dest = _quickstart(tmp_path, etcd)
    proc = run_confsync("--onetime", "--confdir", str(confdir), "--backend", "etcd", "--node", etcd_server.url)
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == "[myconfig]\ndatabase_url = db.example.com\ndatabase_user = rob\n"
    assert oct(dest.stat().st_mode & 0o777) == "0o644"
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")], "stage file left behind"


def test_missing_key_names_key_template_line_and_other_resources_still_render(tmp_path, etcd, etcd_server):
    confdir, dest = _quickstart(tmp_path, etcd)
    broken = tmp_path / "out" / "broken.conf"
    write_confdir(confdir, {"broken": f'[template]\nsrc = "broken.tmpl"\ndest = "{broken}"\nkeys = ["/myapp"]\n'},
                  {"broken.tmpl": 'a = 1\nb = {{getv "/myapp/database/url"}}\nc = {{getv "/myapp/nope"}}\n'})
    proc = run_confsync("--onetime", "--confdir", str(confdir), "--node", etcd_server.url)
    assert proc.returncode == 1
    assert "'/myapp/nope'" in proc.stderr and "broken.tmpl" in proc.stderr and "line 3" in proc.stderr
    assert dest.exists(), "the healthy resource must still be rendered"
    assert not broken.exists()


def test_noop_prints_diff_and_leaves_dest(tmp_path, etcd, etcd_server):
    confdir, dest = _quickstart(tmp_path, etcd)
    assert run_confsync("--onetime", "--confdir", str(confdir), "--node", etcd_server.url).returncode == 0
    etcd.put("/myapp/database/user", "alice")
    before = dest.read_text()
    proc = run_confsync("--onetime", "--noop", "--confdir", str(confdir), "--node", etcd_server.url)
    assert proc.returncode == 0, proc.stderr
    assert "-database_user = rob" in proc.stdout and "+database_user = alice" in proc.stdout
    assert dest.read_text() == before


def test_onetime_exit_code_when_etcd_unreachable(tmp_path, etcd, etcd_server):
    confdir, dest = _quickstart(tmp_path, etcd)
    etcd_server.stop()
    proc = run_confsync("--onetime", "--confdir", str(confdir), "--node", etcd_server.url)
    assert proc.returncode == 1
    assert f"etcd 127.0.0.1:{etcd_server.port} unreachable" in proc.stderr
    assert not dest.exists()


def test_confd_toml_config_file_and_check_cmd_failure_keeps_old_file(tmp_path, etcd, etcd_server):
    etcd.put("/production/app/port", "8080")
    dest = tmp_path / "app.conf"
    dest.write_text("port = 1\n")
    confdir = write_confdir(
        tmp_path / "confd",
        {"app": f'[template]\nsrc = "app.tmpl"\ndest = "{dest}"\nkeys = ["/app"]\n'
                'check_cmd = "grep -q 9999 {{.src}}"\nreload_cmd = "touch ' + str(tmp_path / "reloaded") + '"\n'},
        {"app.tmpl": 'port = {{getv "/app/port"}}\n'},
        confd_toml=f'backend = "etcd"\nnodes = ["{etcd_server.url}"]\nprefix = "/production"\n'
                   'log-level = "debug"\nscheme = "http"\n')
    proc = run_confsync("--onetime", "--confdir", str(confdir))
    assert proc.returncode == 1
    assert "check_cmd exited 1" in proc.stderr
    assert dest.read_text() == "port = 1\n"
    assert not (tmp_path / "reloaded").exists()
    etcd.put("/production/app/port", "9999")
    proc = run_confsync("--onetime", "--confdir", str(confdir))
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == "port = 9999\n"
    assert (tmp_path / "reloaded").exists()
