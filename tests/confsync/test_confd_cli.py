"""confd's command line, spelled the Go flag package's way, is accepted by `portico confsync` unchanged."""

from __future__ import annotations

import pytest
from confsync_helpers import run_confsync, write_confdir

from portico.cli.confsync_cmd import confd_argv


@pytest.mark.parametrize("argv,expected", [
    (["-backend", "etcdv3", "-node", "http://127.0.0.1:2379", "-watch"],
     ["--backend", "etcdv3", "--node", "http://127.0.0.1:2379", "--watch"]),
    (["-onetime", "-confdir", "/etc/confd", "-interval", "600", "-prefix", "/x", "-noop", "-sync-only",
      "-keep-stage-file", "-log-level", "debug", "-config-file", "/etc/confd/confd.toml"],
     ["--onetime", "--confdir", "/etc/confd", "--interval", "600", "--prefix", "/x", "--noop", "--sync-only",
      "--keep-stage-file", "--log-level", "debug", "--config-file", "/etc/confd/confd.toml"]),
    (["-backend=redis", "-watch=false", "-onetime=true", "--node", "a:1"],
     ["--backend=redis", "--no-watch", "--onetime", "--node", "a:1"]),
    (["-prefix", "-odd-but-a-value", "-file", "x.yaml", "-filter", "*.yaml"],
     ["--prefix", "-odd-but-a-value", "--file", "x.yaml", "--filter", "*.yaml"]),
    (["-help"], ["--help"]),
])
def test_go_flags_become_click_options(argv, expected):
    assert confd_argv(argv) == expected


def test_confd_command_line_and_config_file_run_unchanged(tmp_path, etcd, etcd_server):
    etcd.put("/production/myapp/database/url", "db.example.com")
    dest = tmp_path / "out" / "app.conf"
    confdir = write_confdir(
        tmp_path / "confd",
        {"app": f'[template]\nsrc = "app.conf.tmpl"\ndest = "{dest}"\nkeys = ["/myapp/database"]\n'},
        {"app.conf.tmpl": 'url = {{getv "/myapp/database/url"}}\n'})
    config_file = tmp_path / "elsewhere.toml"
    config_file.write_text(f'backend = "etcd"\nnodes = ["{etcd_server.url}"]\nprefix = "/production"\n'
                           f'confdir = "{confdir}"\nlog-level = "debug"\n')
    proc = run_confsync("-config-file", str(config_file), "-onetime", "-keep-stage-file", "-sync-only")
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == "url = db.example.com\n"
    assert "Portico speaks etcd's v3 API" in proc.stderr          # -backend etcd maps to v3, with a note
    # as in confd, a stage file renamed over dest is gone; one that matched dest is kept with -keep-stage-file
    assert run_confsync("-config-file", str(config_file), "-onetime", "-keep-stage-file").returncode == 0
    assert [p for p in dest.parent.iterdir() if p.name.startswith(".app.conf.")], "-keep-stage-file kept it"
    bad = run_confsync("-confdir", str(confdir), "-onetime", "-backend", "etcdv3", "-srv-domain", "example.com")
    assert bad.returncode == 2 and "--srv-domain is not supported" in bad.stderr
    bad = run_confsync("-confdir", str(confdir), "-onetime", "-backend", "etcdv3", "-node", etcd_server.url,
                       "-client-cert", "/x.pem")   # etcd TLS client auth needs the key too
    assert bad.returncode == 2 and "needs both --client-cert and --client-key" in bad.stderr
