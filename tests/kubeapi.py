"""A real kube-apiserver backed by a real etcd, on free 127.0.0.1 ports, for tests (the envtest way).

The binary comes from $KUBEBUILDER_ASSETS (the envtest convention); when that is unset, from
`../shared/k8s/envtest-assets` beside the repository (how this project's machines and CI provide it). Tests
that need it are skipped with a clear reason when neither is there.

`KubeApi.request()` is a small synchronous client for the tests' own objects (create, patch, delete, get): the
code under test uses kubernetes_asyncio, and the tests talk to the API server over plain HTTPS so a bug in how
Portico uses the client cannot hide a bug in the test.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from portico.stack.processes import ManagedProcess, free_port
from portico.stack.servers import RunningServer, start_etcd

REPO = Path(__file__).resolve().parents[1]


def kube_apiserver_binary() -> str | None:
    """The kube-apiserver to run, or None when there is none on this machine."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if not assets:
        script = REPO.parent / "shared" / "k8s" / "envtest-assets"
        if not script.exists():
            return None
        try:
            assets = subprocess.run([str(script)], check=True, capture_output=True, text=True,
                                    timeout=300).stdout.strip()
        except (subprocess.SubprocessError, OSError):
            return None
        os.environ["KUBEBUILDER_ASSETS"] = assets
    binary = Path(assets) / "kube-apiserver"
    return str(binary) if binary.exists() else shutil.which("kube-apiserver")


@dataclass
class KubeApi:
    """A running API server: its URL, an admin bearer token, a kubeconfig for it, and its processes."""

    url: str
    token: str
    kubeconfig: Path
    process: ManagedProcess
    etcd: RunningServer
    workdir: Path

    def __post_init__(self) -> None:
        self._local = threading.local()

    def stop(self) -> None:
        self.process.stop()
        self.etcd.stop()

    # --- a tiny client for the tests' own objects ---------------------------------------------------------

    def ready(self) -> bool:
        req = urllib.request.Request(self.url + "/readyz", headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=5) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    @staticmethod
    def _ssl() -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        return ctx

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        """A kubeconfig carrying a fresh token of that ServiceAccount (TokenRequest), to test its RBAC."""
        review = self.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                              {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                               "spec": {"expirationSeconds": 3600}})
        path = self.workdir / f"kubeconfig-{namespace}-{name}"
        _write_kubeconfig(path, self.url, review["status"]["token"])
        return path

    def request_as(self, kubeconfig: Path, method: str, path: str) -> int:
        """The HTTP status of a request made with the token in `kubeconfig` (for RBAC checks)."""
        token = json.loads(kubeconfig.read_text())["users"][0]["user"]["token"]
        req = urllib.request.Request(self.url + path, method=method, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                ok_missing: bool = False) -> dict:
        """One API call over this thread's kept-alive HTTPS connection; AssertionError on a non-2xx answer."""
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": content_type,
                   "Accept": "application/json"}
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                host, port = self.url.removeprefix("https://").rsplit(":", 1)
                conn = self._local.conn = http.client.HTTPSConnection(host, int(port), context=self._ssl(),
                                                                      timeout=30)
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        if resp.status == 404 and ok_missing:
            return {}
        if resp.status >= 300:
            raise AssertionError(f"{method} {path}: {resp.status} {payload.decode(errors='replace')}")
        return json.loads(payload or b"{}")

    def apply(self, obj: dict, *, dry_run: bool = False) -> dict:
        """Server-side apply of one object whose resource path `path_of` knows."""
        query = "?fieldManager=portico-tests&force=true" + ("&dryRun=All" if dry_run else "")
        return self.request("PATCH", self.path_of(obj) + query, obj, "application/apply-patch+yaml")

    def delete(self, obj_or_path: dict | str) -> None:
        path = obj_or_path if isinstance(obj_or_path, str) else self.path_of(obj_or_path)
        self.request("DELETE", path, ok_missing=True)

    _plurals: dict[tuple[str, str], tuple[str, bool]] | None = None

    def path_of(self, obj: dict, named: bool = True) -> str:
        """The REST path of an object, found through API discovery (so every kind the server has works)."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        if self._plurals is None:
            self._plurals = {}
        if (api_version, kind) not in self._plurals:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for res in self.request("GET", base)["resources"]:
                if "/" not in res["name"]:
                    self._plurals[(api_version, res["kind"])] = (res["name"], res["namespaced"])
        plural, namespaced = self._plurals[(api_version, kind)]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        meta = obj.get("metadata", {})
        ns = f"/namespaces/{meta.get('namespace', 'default')}" if namespaced else ""
        return f"{base}{ns}/{plural}" + (f"/{meta['name']}" if named else "")


def _write_kubeconfig(path: Path, url: str, token: str) -> None:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
    }
    path.write_text(json.dumps(config))


def start_kube_apiserver(workdir: Path, timeout: float = 60.0, watch_cache: bool = True) -> KubeApi:
    """Start etcd and kube-apiserver on free 127.0.0.1 ports; return once /readyz answers ok.

    watch_cache=False sends every watch to etcd, so a watch from a compacted resourceVersion really gets
    410 Gone (what the relist tests need); clusters run with the cache on."""
    binary = kube_apiserver_binary()
    if binary is None:
        raise FileNotFoundError("no kube-apiserver: set KUBEBUILDER_ASSETS or provide ../shared/k8s")
    workdir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    (workdir / "tokens.csv").write_text(f"{token},admin,admin,system:masters\n")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (workdir / "sa.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                                       serialization.NoEncryption()))
    etcd = start_etcd(workdir=workdir / "etcd")
    port = free_port()
    argv = [binary, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
            f"--etcd-servers={etcd.url}", "--service-cluster-ip-range=10.0.0.0/24",
            # RBAC: the admin token is in system:masters; ServiceAccounts get what their Roles give them
            "--authorization-mode=RBAC", f"--token-auth-file={workdir / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={workdir / 'sa.key'}",
            f"--service-account-signing-key-file={workdir / 'sa.key'}",
            f"--cert-dir={workdir / 'certs'}", "--feature-gates=WatchList=false",
            f"--watch-cache={'true' if watch_cache else 'false'}"]
    process = ManagedProcess("kube-apiserver", argv, workdir / "kube-apiserver.log").start()
    url = f"https://127.0.0.1:{port}"
    kubeconfig = workdir / "kubeconfig"
    _write_kubeconfig(kubeconfig, url, token)
    api = KubeApi(url, token, kubeconfig, process, etcd, workdir)
    deadline = time.monotonic() + timeout
    while True:
        if process.popen is not None and process.popen.poll() is not None:
            etcd.stop()
            raise RuntimeError(f"kube-apiserver exited; see {workdir / 'kube-apiserver.log'}")
        try:
            # ready once every post-start hook ran (RBAC's bootstrap roles among them) and `default` exists
            if api.ready() and api.request("GET", "/api/v1/namespaces/default").get("metadata"):
                return api
        except (AssertionError, OSError):
            pass
        if time.monotonic() > deadline:
            api.stop()
            raise TimeoutError(f"kube-apiserver not ready after {timeout}s; see {workdir / 'kube-apiserver.log'}")
        time.sleep(0.2)
