"""Template resources (`conf.d/*.toml`) and the confd.toml settings file, read the way confd reads them.

Existing confd trees must load unchanged; Portico's additions (debounce, timeouts, allow_empty, vars) are extra
optional keys in the same `[template]` table, so a confd file is always a valid Portico file.
"""

from __future__ import annotations

import grp
import posixpath
import pwd
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


class ResourceError(ValueError):
    """A template resource or config file is invalid; the message names the file and the key."""


@dataclass(slots=True)
class TemplateResource:
    """One `[template]` table: what to render, where to, with which keys, and how to check and reload."""

    name: str                      # the TOML file's stem, used in logs and status
    source_file: Path              # the TOML file itself
    src: Path                      # absolute path of the template
    dest: Path
    keys: list[str]
    prefix: str = "/"              # global prefix joined with the resource's own prefix
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    owner: str = ""                # user name; resolved when writing, so a tree loads on any machine
    group: str = ""
    check_cmd: str = ""
    reload_cmd: str = ""
    # Portico additions
    allow_empty: bool = False      # allow a render whose watched keys went from some to none
    debounce: float = 0.5          # seconds of quiet before a change is rendered
    min_reload_interval: float = 1.0
    check_timeout: float = 30.0
    reload_timeout: float = 30.0
    vars: dict[str, Any] = field(default_factory=dict)
    engine: str = "go"             # "go" (confd's text/template) or "jinja2"

    @property
    def watched(self) -> list[str]:
        """The absolute etcd key prefixes this resource reads."""
        return [join_key(self.prefix, key) for key in self.keys]

    def store_key(self, absolute: str) -> str:
        """An absolute key as the template sees it: relative to the resource's prefix, with a leading slash."""
        if self.prefix != "/" and absolute.startswith(self.prefix):
            absolute = absolute[len(self.prefix):]
        return "/" + absolute.lstrip("/")

    def select(self, snapshot: dict[str, str]) -> dict[str, str]:
        """The keys of `snapshot` under this resource's watched prefixes, stripped for the template."""
        watched = self.watched
        return {self.store_key(k): v for k, v in snapshot.items() if any(k.startswith(w) for w in watched)}


def join_key(*parts: str) -> str:
    """Go's path.Join("/", ...): one leading slash, no trailing slash, no doubled slashes."""
    return posixpath.normpath("/" + "/".join(p.strip("/") for p in parts if p.strip("/")))


def _parse_mode(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        raise ResourceError(f"{where}: mode {value!r} is not an octal number like \"0644\"") from None


def resolve_owner(resource: TemplateResource) -> tuple[int | None, int | None]:
    """uid/gid for dest: owner/group names win over uid/gid numbers; None keeps the writer's own."""
    uid, gid = resource.uid, resource.gid
    if resource.owner:
        try:
            entry = pwd.getpwnam(resource.owner)
        except KeyError:
            raise ResourceError(f"{resource.source_file}: owner {resource.owner!r} is not a user here") from None
        uid = entry.pw_uid
        if gid is None and not resource.group:
            gid = entry.pw_gid
    if resource.group:
        try:
            gid = grp.getgrnam(resource.group).gr_gid
        except KeyError:
            raise ResourceError(f"{resource.source_file}: group {resource.group!r} is not a group here") from None
    return uid, gid


JINJA_SUFFIXES = (".j2", ".jinja", ".jinja2")
ENGINES = {"go": "go", "gotemplate": "go", "text/template": "go", "jinja2": "jinja2", "jinja": "jinja2"}


def choose_engine(src: str, declared: Any, where: str) -> str:
    """`engine = "go" | "jinja2"` in the TOML wins; otherwise `.j2`/`.jinja`/`.jinja2` is Jinja2 and any other
    template (confd's `.tmpl`) is Go."""
    if declared is not None:
        engine = ENGINES.get(str(declared).lower())
        if engine is None:
            raise ResourceError(f"{where}: engine {declared!r} is not one of \"go\", \"jinja2\"")
        return engine
    return "jinja2" if src.lower().endswith(JINJA_SUFFIXES) else "go"


def load_resource(path: Path, templates_dir: Path, global_prefix: str = "/") -> TemplateResource:
    """Read one template resource file; raise ResourceError naming the file on any problem."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ResourceError(f"{path}: {exc}") from None
    table = data.get("template")
    if not isinstance(table, dict):
        raise ResourceError(f"{path}: no [template] table")
    for required in ("src", "dest"):
        if not table.get(required):
            raise ResourceError(f"{path}: [template] needs `{required}`")
    keys = table.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ResourceError(f"{path}: `keys` must be a list of strings")

    def number(name: str, default: float) -> float:
        value = table.get(name, default)
        if not isinstance(value, (int, float)) or value < 0:
            raise ResourceError(f"{path}: `{name}` must be a number of seconds >= 0")
        return float(value)

    return TemplateResource(
        name=path.stem, source_file=path, src=(templates_dir / table["src"]).resolve(),
        dest=Path(table["dest"]), keys=keys, prefix=join_key(global_prefix or "/", table.get("prefix", "")),
        mode=_parse_mode(table.get("mode"), str(path)), uid=table.get("uid"), gid=table.get("gid"),
        owner=table.get("owner", ""), group=table.get("group", ""),
        check_cmd=table.get("check_cmd", ""), reload_cmd=table.get("reload_cmd", ""),
        allow_empty=bool(table.get("allow_empty", False)),
        debounce=number("debounce", 0.5), min_reload_interval=number("min_reload_interval", 1.0),
        check_timeout=number("check_timeout", 30.0), reload_timeout=number("reload_timeout", 30.0),
        vars=dict(table.get("vars", {})),
        engine=choose_engine(table["src"], table.get("engine"), str(path)),
    )


def load_resources(confdir: Path, global_prefix: str = "/") -> list[TemplateResource]:
    """All `<confdir>/conf.d/*.toml`, sorted by file name."""
    conf_d = confdir / "conf.d"
    if not conf_d.is_dir():
        raise ResourceError(f"{conf_d}: no such directory (expected template resources in it)")
    return [load_resource(p, confdir / "templates", global_prefix) for p in sorted(conf_d.glob("*.toml"))]


@dataclass(slots=True)
class ConfsyncConfig:
    """Process-wide settings: confd.toml's keys, then overridden by command-line flags."""

    confdir: Path = Path("/etc/confd")
    backend: str = "etcd"
    nodes: list[str] = field(default_factory=list)    # empty: confd's default node for the backend
    prefix: str = "/"
    interval: float = 600.0
    watch: bool = False
    onetime: bool = False
    noop: bool = False
    sync_only: bool = False
    keep_stage_file: bool = False
    log_level: str = "info"
    files: list[str] = field(default_factory=list)     # file backend: YAML files
    file_filter: str = "*"                             # file backend: names to read in folders (-filter)
    separator: str = ""                                # redis backend: "/" in keys replaced by this
    password: str = ""                                 # redis, etcd (with username)
    username: str = ""                                 # etcd
    client_key: str = ""                               # etcd: client key file; redis: the password (as confd)
    client_cert: str = ""                              # etcd: client certificate file (PEM)
    client_ca_keys: str = ""                           # etcd: CA file verifying etcd's certificate (PEM)
    status_port: int | None = None

    _TOML_KEYS: ClassVar[dict[str, str]] = {
                  "confdir": "confdir", "backend": "backend", "nodes": "nodes", "prefix": "prefix",
                  "interval": "interval", "watch": "watch", "onetime": "onetime", "noop": "noop",
                  "sync-only": "sync_only", "sync_only": "sync_only", "keep-stage-file": "keep_stage_file",
                  "log-level": "log_level", "log_level": "log_level", "file": "files",
                  "filter": "file_filter", "separator": "separator", "password": "password",
                  "username": "username", "client_key": "client_key", "client_cert": "client_cert",
                  "client_cakeys": "client_ca_keys",
                  "status-port": "status_port", "status_port": "status_port"}

    def apply_toml(self, path: Path) -> None:
        """Take the keys confd.toml sets; keys Portico does not use (scheme, srv_domain...) are ignored."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ResourceError(f"{path}: {exc}") from None
        for key, value in data.items():
            attr = self._TOML_KEYS.get(key)
            if attr is None:
                continue
            if attr == "confdir":
                value = Path(value)
            elif attr == "files" and isinstance(value, str):
                value = [value]
            setattr(self, attr, value)


def default_config_file(confdir: Path | None) -> Path | None:
    """confd reads `<confdir>/confd.toml` when it exists and no --config-file is given."""
    candidate = (confdir or Path("/etc/confd")) / "confd.toml"
    return candidate if candidate.is_file() else None

