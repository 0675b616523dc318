"""Routers killed with SIGKILL under load, through the whole entrance (`portico up`: HAProxy -> routers -> apps).

What can cost a request: the requests in flight on the router that died (HAProxy must send them to another
router), the connections HAProxy still opens to it before noticing (refused: sent elsewhere), and the HAProxy
reloads that follow (confsync removes the router when its lease expires and adds it back when it is restarted;
a reload must keep the clients' keep-alive connections). Those reloads depend on timing (a router restarted
within its lease keeps its HAProxy server), so two more are made on purpose after the kills.
"""

from __future__ import annotations

import time

from reliability.core import Result, scenario
from reliability.entrance import Entrance
from reliability.parts import Stack

GOAL = ("0 failed idempotent requests (GETs over keep-alive connections through HAProxy) while routers are "
        "killed with SIGKILL one after another and HAProxy reloads as they leave and come back")


@scenario("router_kill", GOAL)
def run(quick: bool) -> Result:
    routers, kills, gap, rate, connections = (2, 1, 3.0, 300.0, 10) if quick else (3, 4, 8.0, 1500.0, 20)
    with Stack("router-kill") as stack:
        up = Entrance(stack, routers=routers).start()
        reloads_before, log_start = up.reloads(), up.access_log_lines()
        load = up.load(rate, connections)
        time.sleep(2.0)
        for i in range(kills):
            up.kill(f"router-{i % routers + 1}")
            time.sleep(gap)
        for _ in range(2):
            up.reload_haproxy()
            time.sleep(gap / 2)
        stats = load.stop()
        confsync_reloads = up.reloads() - reloads_before
        figures: dict[str, object] = {"routers": routers, "routers killed (SIGKILL)": kills,
                                      "seconds between kills": gap}
        figures |= stats.figures()
        figures["HAProxy reloads: by confsync (routers leaving and joining)"] = confsync_reloads
        figures["HAProxy reloads: made by the scenario"] = 2
        figures |= up.access_summary(skip_lines=log_start)
    return Result(figures, met=stats.failed == 0 and stats.sent > 0)
