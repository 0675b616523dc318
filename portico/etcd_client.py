"""etcd clients for confsync and the router's announcement: plain, with user/password, or over TLS with
trusted CAs and a client certificate.

aetcd authenticates with user/password itself but opens only plaintext channels, so TLS is a small subclass
that opens a gRPC TLS channel instead and does the same authentication over it. gRPC errors while connecting
are turned into aetcd's exceptions as aetcd does, so callers handle one family of errors either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aetcd
import aetcd.exceptions
import grpc
from aetcd import rpc, watcher


@dataclass(frozen=True)
class EtcdTls:
    """PEM bytes: the CAs that sign etcd's certificate (empty: the system's), and an optional client pair."""

    ca: bytes = b""
    cert: bytes = b""
    key: bytes = b""

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca or None, private_key=self.key or None,
                                            certificate_chain=self.cert or None)


class _TlsClient(aetcd.Client):
    """aetcd's client over a TLS channel."""

    def __init__(self, *args: Any, tls: EtcdTls, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._credentials = tls.credentials()

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        try:
            await self._open_tls_channel()
        except rpc.AioRpcError as exc:
            aetcd.exceptions._handle_exception(exc)

    async def _open_tls_channel(self) -> None:
        self.channel = rpc.secure_channel(f"{self._host}:{self._port}", self._credentials,
                                          options=list(self._options.items()))
        if self._username is not None and self._password is not None:
            self.auth_stub = rpc.AuthStub(self.channel)
            resp = await self.auth_stub.Authenticate(
                rpc.AuthenticateRequest(name=self._username, password=self._password), timeout=self._timeout)
            self.metadata = (("token", resp.token),)
        self.kvstub = rpc.KVStub(self.channel)
        self.clusterstub = rpc.ClusterStub(self.channel)
        self.leasestub = rpc.LeaseStub(self.channel)
        self.maintenancestub = rpc.MaintenanceStub(self.channel)
        self._watcher = watcher.Watcher(rpc.WatchStub(self.channel), timeout=self._timeout, metadata=self.metadata)
        self._connected.set()


def etcd_client(host: str, port: int, *, timeout: float | None = None, options: dict | None = None,
                username: str = "", password: str = "", tls: EtcdTls | None = None) -> aetcd.Client:
    """An (unconnected) aetcd client; user/password only when both are given."""
    auth = {"username": username, "password": password} if username and password else {}
    if tls is None:
        return aetcd.Client(host=host, port=port, timeout=timeout, options=options, **auth)
    return _TlsClient(host=host, port=port, timeout=timeout, options=options, tls=tls, **auth)


def read_pem_files(ca: str = "", cert: str = "", key: str = "") -> EtcdTls:
    """confd's -client-ca-keys / -client-cert / -client-key are file paths."""
    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    return EtcdTls(ca=read(ca) if ca else b"", cert=read(cert) if cert else b"", key=read(key) if key else b"")
