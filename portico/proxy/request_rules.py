"""The request router's rules for the less common request heads: absolute-form targets, Connection-named
headers, sticky-session cookies, route services (the verdict and the addressing), X-CF-App-Instance. Kept
apart from routing.py (the per-request path, compiled), since most requests need none of them."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

from httptools import parse_url

from portico.proxy import errors
from portico.proxy.route_services import Refusal

if TYPE_CHECKING:
    from portico.proxy.exchange import Exchange
    from portico.proxy.route_services import Outbound
    from portico.proxy.routing import RequestRouter

# X-CF-App-Instance: `<app guid>:<index>`, the guid lower-case 8-4-4-4-12 hex and the index decimal (gorouter's)
APP_INSTANCE_PATTERN = re.compile(rb"([0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}):([0-9]+)\Z")


def log_value(values: list, names: tuple, name: bytes, value: bytes) -> None:
    """Log the value the router forwarded (a tracing header it set), not the one the client sent."""
    if name in names:
        values[names.index(name)] = value


def address_route_service(out: list, outbound: Outbound) -> None:
    """Point the forwarded head at the route service: its request target, its Host, the signed headers."""
    out[2] = outbound.target
    for i in range(4, len(out), 4):
        if out[i].lower() == b"host":
            out[i + 2] = outbound.host
            break
    else:
        out += (b"Host: ", outbound.host, b"\r\n")
    out.append(outbound.headers)


def forwarded_client_cert(mode: str, der: bytes | None, values: list, service_traffic: bool, arrived: bool,
                          out: list) -> None:
    """X-Forwarded-Client-Cert under `forward` or `sanitize_set`, as gorouter's clientcert handler. `der`: the
    client's certificate (None on a plain connection); `service_traffic`: a route service's signed request."""
    if der is not None and service_traffic:
        kept = values                                   # a route service's request over TLS: untouched
    elif mode == "forward":
        kept = values if der else []                    # trusted only from a client with a certificate
    else:
        kept = [base64.b64encode(der)] if der else []   # sanitize_set: the client's own certificate
    if arrived and mode == "forward":
        kept = []
    for value in kept:
        out += (b"X-Forwarded-Client-Cert: ", value, b"\r\n")


def sticky_instance(cookie: bytes, session_names: tuple[bytes, ...]) -> str:
    """The __VCAP_ID__ a request asks for, only when it also carries a session cookie (gorouter's rule);
    with no session names (an auth-negotiate request), __VCAP_ID__ alone."""
    vcap = ""
    has_session = False
    for part in cookie.split(b";"):
        name, _, value = part.strip().partition(b"=")
        if name == b"__VCAP_ID__":
            vcap = value.decode("latin-1")
        elif name in session_names:
            has_session = True
    return vcap if has_session or not session_names else ""


def connection_named_drops(names: tuple[bytes, ...], keep: frozenset = frozenset()) -> set[bytes]:
    """The header names a Connection header's options make hop-by-hop (those `keep` names are passed on)."""
    return {n for n in names if n not in (b"close", b"keep-alive", b"upgrade") and n not in keep}


def drop_connection_named(out: list, names: tuple[bytes, ...], keep: frozenset = frozenset()) -> list:
    """Remove request headers named in Connection: they are hop-by-hop for this message (except `keep`)."""
    skip = connection_named_drops(names, keep)
    if not skip:
        return out
    kept = out[:4]
    for i in range(4, len(out), 4):
        if out[i].lower() not in skip:
            kept += out[i:i + 4]
    return kept


def absolute_form_host(url: bytes) -> bytes | None:
    """The host of an absolute-form request target (`GET http://a.com/x`), which overrides Host."""
    if url[:1] == b"/":
        return None
    try:
        parsed = parse_url(url)
    except Exception:
        return None
    return parsed.host


def route_service_verdict(router: RequestRouter, ex: Exchange, pool, service_url: str, values: dict | None,
                          raw: list, out: list, websocket: bool) -> Outbound | None:
    """The router's route service rules; a refusal becomes the exchange's local response.

    Returns the Outbound when the request goes to the service now; the route service headers are passed
    on unchanged only for a route without a service.
    """
    services = router.ctx.route_services
    close = not ex.keep_alive
    if service_url:
        verdict = services.check_bound(ex, pool, service_url, values, websocket)
    else:
        assert values is not None  # no service: called only because route service headers came
        verdict = services.check_unbound(values)
        if verdict is None:
            out += raw
    if isinstance(verdict, Refusal):
        router._local(ex, errors.error_response(verdict.status, verdict.code, verdict.message, close=close),
                      verdict.status, verdict.code)
        return None
    return verdict


def app_instance_target(router: RequestRouter, ex: Exchange, pool, value: bytes):
    """X-CF-APP-INSTANCE: `<app guid>:<index>` names one instance; a bad or unknown one is a 400.

    The guid must be lower-case 8-4-4-4-12 hex and the index decimal, as gorouter's pattern says.
    """
    close = not ex.keep_alive
    match = APP_INSTANCE_PATTERN.match(value.strip())
    if match is None:
        router._local(ex, errors.error_response(400, "invalid_cf_app_instance_header",
                                                "Invalid X-CF-App-Instance Header", close=close,
                                                extra_headers=errors.NO_CACHE), 400,
                      "invalid_cf_app_instance_header")
        return None
    guid, index = match.group(1).decode(), match.group(2).decode()
    target = pool.by_app_instance(guid, index)
    if target is None:
        router._local(ex, errors.error_response(400, "unknown_route", "Requested instance ('"
                                                f"{index}') with guid ('{guid}') does not exist for route "
                                                f"('{ex.host.decode('latin-1')}')", close=close,
                                                extra_headers=errors.NO_CACHE), 400,
                      "unknown_route")
        return None
    return target
