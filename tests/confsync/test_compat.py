"""confd compatibility: resource and confd.toml files from confd's own documentation load unchanged, the
functions keep confd's names and sort orders, and the env and file backends map keys as confd does."""

from __future__ import annotations

import asyncio
import os

from confsync_helpers import run_confsync, write_confdir

from portico.confsync.backends import EnvBackend, FileBackend
from portico.confsync.functions import Store, template_functions
from portico.confsync.render import Renderer, RenderError
from portico.confsync.resources import ConfsyncConfig, load_resources

# Verbatim from confd's docs: template-resources.md, quick-start-guide.md and configuration-guide.md.
DOC_NGINX = """\
[template]
src = "nginx.conf.tmpl"
dest = "/etc/nginx/nginx.conf"
owner = "root"
group = "root"
mode = "0644"
keys = [
  "/nginx",
]
check_cmd = "/usr/sbin/nginx -t -c {{.src}}"
reload_cmd = "/usr/sbin/service nginx restart"
"""
DOC_MYAPP = """\
[template]
prefix = "/myapp"
src = "nginx.tmpl"
dest = "/tmp/myapp.conf"
owner = "nginx"
mode = "0644"
keys = [
  "/subdomain",
  "/upstream",
]
check_cmd = "/usr/sbin/nginx -t -c {{.src}}"
reload_cmd = "/usr/sbin/service nginx reload"
"""
DOC_CONFD_TOML = """\
backend = "etcd"
client_cert = "/etc/confd/ssl/client.crt"
client_key = "/etc/confd/ssl/client.key"
confdir = "/etc/confd"
log-level = "debug"
interval = 600
nodes = [
  "http://127.0.0.1:4001",
]
noop = false
prefix = "/production"
scheme = "https"
srv_domain = "etcd.example.com"
"""


def test_confd_doc_files_load_unchanged(tmp_path):
    confdir = write_confdir(tmp_path, {"nginx": DOC_NGINX, "myapp-nginx": DOC_MYAPP}, {}, confd_toml=DOC_CONFD_TOML)
    config = ConfsyncConfig()
    config.apply_toml(confdir / "confd.toml")
    assert (config.backend, config.nodes, config.prefix, config.log_level, config.interval) == (
        "etcd", ["http://127.0.0.1:4001"], "/production", "debug", 600)
    myapp, nginx = load_resources(confdir, config.prefix)
    assert nginx.watched == ["/production/nginx"] and nginx.mode == 0o644 and nginx.owner == "root"
    assert nginx.check_cmd == "/usr/sbin/nginx -t -c {{.src}}"
    assert myapp.watched == ["/production/myapp/subdomain", "/production/myapp/upstream"]
    assert myapp.select({"/production/myapp/upstream/app1": "10.0.1.101:80", "/other": "x"}) == {
        "/upstream/app1": "10.0.1.101:80"}


def test_confd_advanced_example_renders_with_sorted_getvs(tmp_path):
    tmpl = ('upstream {{getv "/subdomain"}} {\n{{range getvs "/upstream/*"}}    server {{.}};\n'
            "{{end}}}\n")
    confdir = write_confdir(tmp_path, {"myapp-nginx": DOC_MYAPP}, {"nginx.tmpl": tmpl})
    (resource,) = load_resources(confdir)
    keys = resource.select({"/myapp/subdomain": "myapp", "/myapp/upstream/app2": "10.0.1.100:80",
                            "/myapp/upstream/app1": "10.0.1.101:80"})
    out = Renderer(confdir / "templates").render(resource, keys)
    assert out == "upstream myapp {\n    server 10.0.1.100:80;\n    server 10.0.1.101:80;\n}\n"


def test_functions_match_confd():
    f = template_functions(Store({"/app/b": "2", "/app/a": "9", "/app/c/x": "1", "/app/c/y": "0", "/top": "t"}))
    assert [kv.Key for kv in f["gets"]("/app/*")] == ["/app/a", "/app/b"]          # sorted by key, no /app/c/x
    assert f["getvs"]("/app/*") == ["2", "9"] and f["getvs"]("/app/c/*") == ["0", "1"]  # sorted by value
    assert f["ls"]("/app") == ["a", "b", "c"] and f["lsdir"]("/app") == ["c"] and f["ls"]("/") == ["app", "top"]
    assert f["getv"]("/nope", "dflt") == "dflt" and f["exists"]("/top") and not f["exists"]("/nope")
    assert f["get"]("/top").Value == "t" and f["base"]("/a/b") == "b" and f["dir"]("/a/b") == "/a"
    assert f["json"]('{"a": 1}')["a"] == 1 and f["jsonArray"]("[1, 2]") == [1, 2]
    assert f["split"]("a:b", ":") == ["a", "b"] and f["join"](["a", "b"], ",") == "a,b"
    assert f["replace"]("aaa", "a", "b", 2) == "bba" and f["replace"]("aaa", "a", "b", -1) == "bbb"
    assert f["contains"]("abc", "b") and f["toUpper"]("a") == "A" and f["toLower"]("A") == "a"
    assert f["seq"](1, 3) == [1, 2, 3] and f["atoi"]("42") == 42
    assert (f["add"](1, 2), f["sub"](5, 2), f["mul"](2, 3), f["div"](7, 2), f["mod"](7, 2)) == (3, 3, 6, 3, 1)
    assert f["map"]("k", 1, "j", 2) == {"k": 1, "j": 2}
    assert f["base64Decode"](f["base64Encode"]("hi")) == "hi"
    assert f["lookupIP"]("localhost") and f["getenv"]("PORTICO_SURELY_UNSET", "d") == "d"
    assert f["datetime"]().year >= 2024


def test_syntax_error_names_template_and_line(tmp_path):
    confdir = write_confdir(tmp_path, {"x": '[template]\nsrc = "x.tmpl"\ndest = "/tmp/x"\nkeys = ["/x"]\n'},
                            {"x.tmpl": "ok\n{{range}}\n"})
    (resource,) = load_resources(confdir)
    try:
        Renderer(confdir / "templates").render(resource, {})
    except RenderError as exc:
        assert exc.line == 2 and "x.tmpl" in str(exc)
    else:
        raise AssertionError("expected RenderError")


def test_env_and_file_backends_map_keys_like_confd(tmp_path, monkeypatch):
    monkeypatch.setenv("MYAPP_DATABASE_URL", "db.example.com")
    monkeypatch.setenv("MYAPP_DATABASE_USER", "rob")
    assert asyncio.run(EnvBackend(["/myapp/database"]).fetch()) == {
        "/myapp/database/url": "db.example.com", "/myapp/database/user": "rob"}
    yml = tmp_path / "myapp.yaml"
    yml.write_text("myapp:\n  database:\n    url: db.example.com\n    user: rob\n  ports: [80, 443]\n")
    assert asyncio.run(FileBackend([str(yml)], ["/myapp"]).fetch()) == {
        "/myapp/database/url": "db.example.com", "/myapp/database/user": "rob",
        "/myapp/ports/0": "80", "/myapp/ports/1": "443"}


def test_cli_env_backend_onetime(tmp_path):
    dest = tmp_path / "out.conf"
    confdir = write_confdir(tmp_path / "confd", {"c": f'[template]\nsrc = "c.tmpl"\ndest = "{dest}"\n'
                                                     'keys = ["/myapp/database"]\nmode = "0600"\n'},
                            {"c.tmpl": 'url={{getv "/myapp/database/url"}}\n'})
    env = {**os.environ, "MYAPP_DATABASE_URL": "db.example.com"}
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "portico", "confsync", "--onetime", "--backend", "env",
                           "--confdir", str(confdir)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == "url=db.example.com\n" and dest.stat().st_mode & 0o777 == 0o600
    bad = run_confsync("--onetime", "--confdir", str(tmp_path / "nowhere"))
    assert bad.returncode == 2 and "no such directory" in bad.stderr


def test_engine_follows_extension_or_toml_key_and_jinja_in_tmpl_gets_a_hint(tmp_path):
    confdir = write_confdir(tmp_path, {
        "go": '[template]\nsrc = "a.tmpl"\ndest = "/tmp/a"\nkeys = ["/x"]\n',
        "j2": '[template]\nsrc = "b.j2"\ndest = "/tmp/b"\nkeys = ["/x"]\n',
        "forced": '[template]\nsrc = "c.tmpl"\ndest = "/tmp/c"\nkeys = ["/x"]\nengine = "jinja2"\n',
        "old": '[template]\nsrc = "d.tmpl"\ndest = "/tmp/d"\nkeys = ["/x"]\n'},
        {"a.tmpl": '{{getv "/x/y"}}\n', "b.j2": "{{ getv('/x/y') }}\n", "c.tmpl": "{{ getv('/x/y') }}\n",
         "d.tmpl": "{{ getv('/x/y') }}\n"})
    resources = {r.name: r for r in load_resources(confdir)}
    assert [resources[n].engine for n in ("go", "j2", "forced", "old")] == ["go", "jinja2", "jinja2", "go"]
    renderer = Renderer(confdir / "templates")
    for name in ("go", "j2", "forced"):
        assert renderer.render(resources[name], {"/x/y": "1"}) == "1\n"
    try:
        renderer.render(resources["old"], {"/x/y": "1"})
    except RenderError as exc:
        assert 'unexpected "(" in operand' in str(exc) and 'engine = "jinja2"' in str(exc)
    else:
        raise AssertionError("expected RenderError")
