"""`portico register` / `portico unregister`: publish a gorouter registration on NATS, like `nats-pub` does.

    portico register --nats nats://127.0.0.1:4222 --host 10.254.90.233 --port 9528 --uri test.a.com
    portico register ... --repeat 20        # keep re-registering every 20 s until Ctrl-C, like a running app
    portico unregister --host 10.254.90.233 --port 9528 --uri test.a.com

Exit status: 0 when published (and flushed), 1 when NATS cannot be reached, 2 on a bad option.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Annotated

import typer

from portico.bus.messages import (
    REGISTER,
    UNREGISTER,
    MalformedMessage,
    Options,
    Registration,
    decode_registration,
    encode_registration,
)
from portico.bus.publish import NatsUnavailable, publish_every, publish_once

NatsOpt = Annotated[list[str], typer.Option("--nats", help="NATS server URL (repeatable).")]
HostOpt = Annotated[str, typer.Option("--host", help="Endpoint address.")]
PortOpt = Annotated[int, typer.Option("--port", min=0, max=65535, help="Endpoint plain HTTP port.")]
UriOpt = Annotated[list[str], typer.Option("--uri", help="Route: host, host/path or *.domain (repeatable).")]
TlsPortOpt = Annotated[int, typer.Option("--tls-port", min=0, max=65535,
                                         help="TLS port; when set the endpoint is TLS and this port is used.")]
AppOpt = Annotated[str, typer.Option("--app", help="App guid (X-CF-ApplicationID).")]
InstanceIdOpt = Annotated[str, typer.Option("--instance-id", help="private_instance_id (X-CF-InstanceID).")]
InstanceIndexOpt = Annotated[str, typer.Option("--instance-index",
                                               help="private_instance_index (X-CF-InstanceIndex).")]
TtlOpt = Annotated[int, typer.Option("--ttl", min=0,
                                     help="stale_threshold_in_seconds: this endpoint's TTL (0: router default).")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="Tag as key=value (repeatable).")]
SanOpt = Annotated[str, typer.Option("--server-cert-domain-san", help="Expected TLS server name.")]
RouteServiceOpt = Annotated[str, typer.Option("--route-service-url", help="Route service URL (https).")]
IsolationOpt = Annotated[str, typer.Option("--isolation-segment", help="Isolation segment.")]
ProtocolOpt = Annotated[str, typer.Option("--protocol", help="http1 or http2 (empty: http1).")]
AzOpt = Annotated[str, typer.Option("--az", help="Availability zone.")]
LbOpt = Annotated[str, typer.Option("--lb", help="options.loadbalancing: round-robin or least-connection.")]
RepeatOpt = Annotated[float, typer.Option("--repeat", min=0, metavar="SECONDS",
                                          help="Publish again every SECONDS until Ctrl-C (a keep-alive).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON message published.")]

_DEFAULT_NATS = ["nats://127.0.0.1:4222"]
_LB = ("", "round-robin", "least-connection")


def _command(subject: str):
    """`portico register` and `portico unregister` take the same options and differ only in the subject."""

    def command(
        uri: UriOpt,
        nats: NatsOpt = _DEFAULT_NATS,
        host: HostOpt = "127.0.0.1",
        port: PortOpt = 0,
        tls_port: TlsPortOpt = 0,
        app: AppOpt = "",
        instance_id: InstanceIdOpt = "",
        instance_index: InstanceIndexOpt = "",
        ttl: TtlOpt = 0,
        tag: TagOpt = None,
        server_cert_domain_san: SanOpt = "",
        route_service_url: RouteServiceOpt = "",
        isolation_segment: IsolationOpt = "",
        protocol: ProtocolOpt = "",
        az: AzOpt = "",
        lb: LbOpt = "",
        repeat: RepeatOpt = 0.0,
        json: JsonOpt = False,
    ) -> None:
        reg = _build(uri, host, port, tls_port, app, instance_id, instance_index, ttl, tag or [],
                     server_cert_domain_san, route_service_url, isolation_segment, protocol, az, lb)
        _run(subject, reg, nats, repeat, json)

    return command


register = _command(REGISTER)
unregister = _command(UNREGISTER)


def _build(uris, host, port, tls_port, app, instance_id, instance_index, ttl, tags, san, route_service_url,
           isolation_segment, protocol, az, lb) -> Registration:
    tag_map: dict[str, str] = {}
    for item in tags:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--tag")
        tag_map[key] = value
    if protocol not in ("", "http1", "http2"):
        raise typer.BadParameter(f"must be http1 or http2, got {protocol!r}", param_hint="--protocol")
    if lb not in _LB:
        raise typer.BadParameter(f"must be round-robin or least-connection, got {lb!r}", param_hint="--lb")
    if route_service_url and not route_service_url.startswith("https"):
        raise typer.BadParameter(f"must start with https, got {route_service_url!r}",
                                 param_hint="--route-service-url")
    reg = Registration(
        host=host, port=port, tls_port=tls_port, uris=list(uris), app=app, private_instance_id=instance_id,
        private_instance_index=instance_index, server_cert_domain_san=san, route_service_url=route_service_url,
        tags=tag_map or None, stale_threshold_in_seconds=ttl, isolation_segment=isolation_segment,
        protocol=protocol, availability_zone=az, options=Options(loadbalancing=lb) if lb else None,
    )
    # What we send must be what a router accepts: round-trip through the router's own decoder.
    try:
        decode_registration(encode_registration(reg))
    except MalformedMessage as err:
        raise typer.BadParameter(str(err)) from None
    return reg


class _OneLineFormatter(logging.Formatter):
    """A command-line tool prints one line per problem: a library's traceback (nats-py logs one when an
    interrupt cancels a flush whose PONG then arrives) becomes its exception's name and message."""

    def format(self, record: logging.LogRecord) -> str:
        line = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            line = f"{line} ({err.__class__.__name__}: {err})"
        return self._fmt % {"message": line} if self._fmt else line


def _run(subject: str, reg: Registration, urls: list[str], repeat: float, print_json: bool) -> None:
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_OneLineFormatter("portico: %(message)s"))
        logging.basicConfig(level=logging.WARNING, handlers=[handler])
    payload = encode_registration(reg)
    if print_json:
        typer.echo(payload.decode())
    else:
        address = f"{reg.host}:{reg.tls_port or reg.port}"
        typer.echo(f"{subject} {address} {' '.join(reg.uris or ())}", err=True)
    try:
        if repeat > 0:
            asyncio.run(publish_every(urls, subject, reg, repeat))
        else:
            asyncio.run(publish_once(urls, subject, reg))
    except NatsUnavailable as err:
        typer.echo(f"portico {subject.split('.')[-1]}: {err}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except Exception as err:  # a one-line error, never a traceback
        typer.echo(f"portico {subject.split('.')[-1]}: {err.__class__.__name__}: {err}", err=True)
        raise typer.Exit(1) from None
