"""Issue 10.6: NATS passwords, basic-auth credentials and route_services_secret never appear in logs, in /varz
or /metrics, and `portico router --print-config` masks them.

A router runs at debug level against a nats-server that requires a password, with one unreachable NATS host
in its list (so connect failures are logged), serves a request whose target carries credentials, and is asked
for /varz with right and wrong passwords; then every log and answer is searched for each secret.
"""

from __future__ import annotations

import base64
import subprocess
import urllib.error
import urllib.request

from support import PASS, PYTHON, REPO, Client, Router, unique_host

from portico.stack.processes import free_port
from portico.stack.servers import start_nats

NATS_PASSWORD = "nats-Pw-7f3a91"
RS_SECRET = "route-svc-Secret-55e1"
BASIC_PASSWORD = "basic-Pw-0c2d"


def test_secrets_stay_out_of_logs_varz_and_config_dumps(tmp_path, backend):
    nats = start_nats(workdir=tmp_path / "nats", args=["--user", "router", "--pass", NATS_PASSWORD])
    router = Router(tmp_path / "router", f"nats://router:{NATS_PASSWORD}@127.0.0.1:{nats.port}", nats.port, {
        "nats": {"user": "router", "pass": NATS_PASSWORD,
                 "hosts": [{"hostname": "127.0.0.1", "port": free_port()},
                           {"hostname": "127.0.0.1", "port": nats.port}]},
        "route_services_secret": RS_SECRET,
        "logging": {"level": "debug", "file": str(tmp_path / "router" / "router.log")},
    })
    try:
        router.start()
        host = unique_host("secret")
        router.register(host, backend.port)
        token = base64.b64encode(f"alice:{BASIC_PASSWORD}".encode()).decode()
        with Client(router.port) as c:
            r = c.request("GET", f"http://alice:{BASIC_PASSWORD}@{host}/with-userinfo", host,
                          headers=[("Authorization", f"Basic {token}")])
            assert r.status == 200
        assert router.access_lines("with-userinfo")
        bad = urllib.request.Request(f"http://127.0.0.1:{router.status_port}/varz")
        bad.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{BASIC_PASSWORD}".encode()).decode())
        try:
            urllib.request.urlopen(bad, timeout=5)
            raise AssertionError("wrong password accepted")
        except urllib.error.HTTPError as err:
            assert err.code == 401
        varz = router._get_status(router.status_port, "/varz")[2].decode()
        metrics = router._get_status(router.status_port, "/metrics")[2].decode()
        dump = subprocess.run([PYTHON, "-m", "portico", "router", "-c", str(router.config_path), "--print-config"],
                              capture_output=True, text=True, cwd=str(REPO), timeout=60)
        assert dump.returncode == 0, dump.stderr
        assert "password: '***'" in dump.stdout and "route_services_secret: '***'" in dump.stdout
    finally:
        router.stop()
        nats.stop()
    logs = router.output() + router.access_log.read_text()
    assert "settings:" in logs                   # the debug dump of the settings was written (masked)
    assert "cannot connect" in logs or "NATS" in logs
    for secret in (NATS_PASSWORD, RS_SECRET, BASIC_PASSWORD, PASS, token):
        for where, text in (("logs", logs), ("/varz", varz), ("/metrics", metrics),
                            ("--print-config", dump.stdout + dump.stderr)):
            assert secret not in text, f"{secret!r} found in {where}"
