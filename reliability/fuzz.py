"""Property-based fuzzing (hypothesis) of the paths that read untrusted input: the proxy's request parser path
(over real sockets to a real router), the registration decoder, the route-key normaliser and the config
loader. The rule everywhere: never a crash, never a 500, never a hang; bad input gets its clear rejection.

Each `fuzz_*` function runs `examples` generated inputs and returns FuzzCounts; a broken rule is counted
(not raised), with the first few failing inputs kept, so the fault suite can report figures and the tests can
assert zeros. Needs the `hypothesis` package (the project's test extra).
"""

from __future__ import annotations

import json
import logging
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st


@dataclass
class FuzzCounts:
    target: str
    examples: int = 0
    failures: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def fail(self, kind: str, sample: object) -> None:
        self.failures += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if len(self.samples) < 5:
            self.samples.append(f"{kind}: {sample!r}"[:400])


def _run(body: Callable, strategy, examples: int) -> None:
    """Run `body` over `examples` inputs drawn from `strategy` (no shrinking: failures are counted).

    Portico's own warnings (one per malformed message) are silenced meanwhile: they are expected here."""
    portico_log = logging.getLogger("portico")
    level = portico_log.level
    portico_log.setLevel(logging.ERROR)
    try:
        _check(body, strategy, examples)
    finally:
        portico_log.setLevel(level)


def _check(body: Callable, strategy, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=(Phase.generate,))
    @given(strategy)
    def check(value) -> None:
        body(value)

    check()


# ---- the request parser path, over a real socket ------------------------------------------------------------

_LINE_ENDS = st.sampled_from([b"\r\n"] * 8 + [b"\n", b"\r", b"\r\r\n", b"\n\r"])
_METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT",
                            b"TRACE", b"get", b"PRI", b""]) | st.binary(min_size=1, max_size=8)
_TARGETS = (st.sampled_from([b"/", b"*", b"http://{host}/abs", b"//x", b"/a?b=c#d", b"/%00", b"{host}:443",
                             b"/../../etc/passwd"])
            | st.binary(max_size=40).map(lambda b: b"/" + b))
_VERSIONS = st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2",
                                                 b"http/1.1", b"", b"HTTP/1.1 ", b"HTTP/9.9"])
_NAMES = (st.sampled_from([b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect",
                           b"Upgrade", b"X-A", b"Cookie", b"X-CF-APP-INSTANCE", b"X-Forwarded-For",
                           b"Content-Length ", b" Transfer-Encoding", b"Host"])
          | st.binary(min_size=0, max_size=12))
_VALUES = (st.sampled_from([b"chunked", b"0", b"5", b"-1", b"close", b"keep-alive", b"100-continue",
                            b"{host}", b"websocket", b"gzip, chunked", b"chunked, chunked", b"1e3",
                            b"abc:1", b"JSESSIONID=a; __VCAP_ID__=b"])
           | st.binary(max_size=30))
_CHUNKS = st.lists(st.tuples(st.sampled_from([b"", b"0x", b"-", b" ", b"ffffffffffffffffff"]),
                             st.binary(max_size=20), _LINE_ENDS), max_size=4).map(
    lambda parts: b"".join(b"%s%x%s%s%s" % (pre, len(data), end, data, end) for pre, data, end in parts)
    + b"0\r\n\r\n")
_BODIES = st.one_of(st.just(b""), st.binary(max_size=60), _CHUNKS)

REQUESTS = st.builds(
    lambda method, target, version, host, headers, end, body: (
        method + b" " + target + (b" " + version if version else b"") + end + host
        + b"".join(name + b":" + value + line_end for name, value, line_end in headers) + end + body),
    _METHODS, _TARGETS, _VERSIONS, st.sampled_from([b"Host: {host}\r\n", b""]),
    st.lists(st.tuples(_NAMES, _VALUES, _LINE_ENDS), max_size=8), _LINE_ENDS, _BODIES)


_SAFE_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=20).map(str.encode)
NEAR_VALID = st.builds(
    lambda method, path, headers, body, chunked: (
        method + b" /" + path + b" HTTP/1.1\r\nHost: {host}\r\n"
        + b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        + (b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked and body
           else b"Content-Length: %d\r\n\r\n%s" % (len(body), body))),
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=30).map(str.encode),
    st.lists(st.tuples(st.sampled_from([b"X-A", b"Cookie", b"Connection", b"X-Forwarded-For", b"Expect",
                                        b"X-CF-APP-INSTANCE", b"Upgrade", b"Accept"]), _SAFE_VALUE), max_size=5),
    st.binary(max_size=40), st.booleans())


def _exchange(port: int, data: bytes, timeout: float) -> tuple[list[int], bool]:
    """Send a request and read what comes back: (statuses seen, finished in time).

    A complete request is answered at once; one that is still incomplete (a body shorter than its length)
    gets nothing, so after a short silence the client half-closes, as a client giving up would, and the
    router must then close within `timeout`.
    """
    deadline = time.monotonic() + timeout
    buf = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass
        half_closed = False
        wait = _FIRST_SILENCE
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _statuses(buf), False
            sock.settimeout(min(wait, remaining))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if half_closed:
                    return _statuses(buf), False
                if buf:  # answered, and the connection is kept alive: done
                    return _statuses(buf), True
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                half_closed, wait = True, timeout
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if _complete_response(buf):
                return _statuses(buf), True
            wait = _MORE_SILENCE
    return _statuses(buf), True


_FIRST_SILENCE = 0.3
_MORE_SILENCE = 0.1


def _complete_response(buf: bytes) -> bool:
    """One whole response with a Content-Length body (every answer from this router and backend has one)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(buf) >= end + 4 + int(value.strip())
    return False


def _statuses(buf: bytes) -> list[int]:
    out = []
    for line in buf.split(b"\r\n"):
        if line.startswith(b"HTTP/1.") and len(line) >= 12 and line[9:12].isdigit():
            out.append(int(line[9:12]))
    return out


def fuzz_request_parser(router_port: int, host: str, examples: int = 200, timeout: float = 10.0,
                        backend_parse_errors: Callable[[], int] | None = None) -> FuzzCounts:
    """Generated requests, well-formed and not, to a real router. Counted: a 500 (a crash in the parser
    path), no close within `timeout` (a hang), and - with `backend_parse_errors` - a request forwarded in a
    form the strict recording backend could not parse."""
    counts = FuzzCounts("request parser path")
    start_errors = backend_parse_errors() if backend_parse_errors else 0

    def body(data: bytes) -> None:
        data = data.replace(b"{host}", host.encode())
        counts.examples += 1
        statuses, finished = _exchange(router_port, data, timeout)
        if 500 in statuses:
            counts.fail("500", data)
        if not finished:
            counts.fail("hang", data)

    _run(body, st.one_of(REQUESTS, NEAR_VALID), examples)
    if backend_parse_errors is not None:
        extra = backend_parse_errors() - start_errors
        for _ in range(extra):
            counts.fail("forwarded unparseable", "see the backend's parse errors")
    return counts


# ---- the registration decoder ----------------------------------------------------------------------------------

_JSON_SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                 | st.text(max_size=20))
_JSON = st.recursive(_JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_FIELDS = ["host", "port", "tls_port", "uris", "app", "private_instance_id", "private_instance_index",
           "server_cert_domain_san", "route_service_url", "tags", "stale_threshold_in_seconds", "protocol",
           "isolation_segment", "availability_zone", "endpoint_updated_at_ns", "options"]
REGISTRATIONS = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=10).map(lambda d: json.dumps(d).encode()),
    st.fixed_dictionaries({"host": st.text(max_size=20), "port": st.integers(-5, 70000),
                           "uris": st.lists(st.text(max_size=30), max_size=3)},
                          optional={"tls_port": st.integers(-5, 70000), "options": _JSON,
                                    "stale_threshold_in_seconds": _JSON_SCALARS, "tags": _JSON}).map(
        lambda d: json.dumps(d).encode()),
)


def fuzz_registration_decoder(examples: int = 500) -> FuzzCounts:
    """Payloads for router.register / router.unregister: applied or dropped as malformed, never raised."""
    from portico.bus.applier import PayloadApplier
    from portico.observe.metrics import RouterMetrics
    from portico.routes import RouteTable

    counts = FuzzCounts("registration decoder")
    table = RouteTable()
    applier = PayloadApplier(table, RouterMetrics(), clock=lambda: 100.0)

    def body(data: bytes) -> None:
        counts.examples += 1
        try:
            applier.register(data)
            applier.unregister(data)
            table.snapshot()
        except Exception as exc:  # the rule under test: nothing escapes
            counts.fail(type(exc).__name__, data)

    _run(body, REGISTRATIONS, examples)
    return counts


# ---- the route-key normaliser ------------------------------------------------------------------------------------

def fuzz_route_keys(examples: int = 500) -> FuzzCounts:
    """Registered uris and request Host values: normalised, stored and looked up without an error, and a
    registered route is found again by its own normalised key."""
    from portico.routes import RouteTable
    from portico.routes.endpoint import Endpoint
    from portico.routes.uri import host_without_port, split_route

    counts = FuzzCounts("route-key normaliser")
    table = RouteTable()

    def body(pair: tuple[str, str]) -> None:
        uri, host_header = pair
        counts.examples += 1
        try:
            host, path = split_route(uri)
            if host != host.lower() or "?" in host + path or "/" in host:
                counts.fail("not normalised", uri)
            table.register(uri, Endpoint("10.0.0.1", 8080))
            if host and table.lookup(host, path or "/") is None:
                counts.fail("registered route not found", uri)
            table.lookup(host_without_port(host_header).strip().lower(), "/" + uri)
            table.unregister(uri, "10.0.0.1:8080")
        except Exception as exc:
            counts.fail(type(exc).__name__, pair)

    _run(body, st.tuples(st.text(max_size=40), st.text(max_size=30)), examples)
    return counts


# ---- the config loader -------------------------------------------------------------------------------------------

_CONFIG_KEYS = ["port", "status", "nats", "index", "droplet_stale_threshold", "endpoint_timeout", "backends",
                "tls_pem", "enable_ssl", "logging", "access_log", "max_client_connections", "route_services_secret",
                "sticky_session_cookie_names", "balancing_algorithm", "etcd", "request_header_timeout", "workers",
                "route_snapshot", "extra_headers_to_log", "drain_wait", "ca_certs"]
_YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=15) | st.sampled_from(["5s", "1m", "-3s", "0", "abc", "1h30m", "!!int x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["port", "user", "pass", "hosts", "hostname", "max_attempts", "level", "file", "host",
                         "cert_chain", "private_key", "endpoints", "enabled"]), inner, max_size=3),
    max_leaves=10)
CONFIGS = st.one_of(
    st.dictionaries(st.sampled_from(_CONFIG_KEYS), _YAML_VALUES, max_size=6).map(
        lambda d: __import__("yaml").safe_dump(d)),
    st.text(max_size=200),
)


def fuzz_config_loader(examples: int = 300) -> FuzzCounts:
    """Config files: loaded, or refused with a ConfigError (file, line, key, why); nothing else escapes."""
    from portico.config.loader import ConfigError, load_config

    counts = FuzzCounts("config loader")
    tmp = Path(tempfile.mkdtemp(prefix="portico-fuzz-config-"))
    path = tmp / "gorouter.yml"

    def body(text: str) -> None:
        counts.examples += 1
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_config(path)
        except ConfigError as err:
            if not str(err):
                counts.fail("empty ConfigError", text)
        except Exception as exc:
            counts.fail(type(exc).__name__, text)

    try:
        _run(body, CONFIGS, examples)
    finally:
        path.unlink(missing_ok=True)
        tmp.rmdir()
    return counts


def fuzz_in_process(examples: int = 300) -> list[FuzzCounts]:
    """The three in-process targets (decoder, route keys, config loader), `examples` each."""
    return [fuzz_registration_decoder(examples), fuzz_route_keys(examples), fuzz_config_loader(examples)]
