"""etcd killed (SIGKILL) under load and started again on its data, behind the whole entrance (`portico up --etcd`).

While etcd is away HAProxy keeps the config it has and traffic flows; the routers keep trying to renew their
leases and confsync keeps trying to resume its watch. When etcd is back the routers announce themselves again
(same key, same value) and confsync resumes from the revision it had seen: nothing changed, so no reload.
The full version keeps etcd down for three lease TTLs.
"""

from __future__ import annotations

import asyncio
import signal
import time

import aetcd

from reliability.core import Result, scenario
from reliability.entrance import Entrance
from reliability.parts import Stack, wait_for, wait_for_port

GOAL = ("0 failed requests while etcd is down and after it is back; HAProxy's config unchanged and 0 reloads "
        "(no reload storm); confsync's watch resumed and every router announced again")


def _announced(port: int, prefix: str = "/portico/routers/") -> int:
    async def count() -> int:
        async with aetcd.Client(host="127.0.0.1", port=port, timeout=3) as client:
            return len(await client.get_prefix(prefix.encode()))

    try:
        return asyncio.run(count())
    except Exception:
        return -1


@scenario("etcd_restart", GOAL)
def run(quick: bool) -> Result:
    routers, outage, settle = (2, 3.0, 2.0) if quick else (3, 15.0, 12.0)
    with Stack("etcd-restart") as stack:
        etcd = stack.etcd()
        up = Entrance(stack, routers=routers, etcd_url=etcd.url).start()
        wait_for(lambda: _announced(etcd.port) == routers, timeout=30, message="every router announced")
        up.settle()
        reloads_before, watches_before, digest_before = up.reloads(), up.watch_starts(), up.haproxy_cfg_digest()
        load = up.load(150.0, 6)
        time.sleep(2.0)
        logged = {i: len(up.router_log(i)) for i in range(1, routers + 1)}   # router log lengths before the kill
        etcd.process.stop(signum=signal.SIGKILL)
        time.sleep(outage)
        etcd.process.start()
        wait_for_port(etcd.port, timeout=30, process=etcd.process.popen)
        back = time.monotonic()
        wait_for(lambda: up.watch_starts() > watches_before, timeout=60, interval=0.05,
                 message="confsync's watch resumed")
        resumed = time.monotonic() - back
        wait_for(lambda: all("registered in etcd" in up.router_log(i)[logged[i]:]
                             for i in range(1, routers + 1)) and _announced(etcd.port) == routers,
                 timeout=60, interval=0.1, message="every router announced again")
        announced = time.monotonic() - back
        time.sleep(settle)
        stats = load.stop()
        reloads = up.reloads() - reloads_before
        unchanged = up.haproxy_cfg_digest() == digest_before
        figures: dict[str, object] = {"routers": routers, "etcd down (s)": outage}
        figures |= stats.figures()
        figures["confsync's watch resumed, s after etcd was back"] = round(resumed, 2)
        figures["every router announced again, s after etcd was back"] = round(announced, 2)
        figures[f"HAProxy reloads (outage and the following {settle:g}s)"] = reloads
        figures["haproxy.cfg unchanged"] = unchanged
        figures["confsync still running (not restarted)"] = up.state()["parts"]["confsync"]["restarts"] == 0
    return Result(figures, met=stats.failed == 0 and reloads == 0 and unchanged and stats.sent > 0)
