"""confsync killed (SIGKILL) under load, behind the whole entrance; `portico up --restart` starts it again.

confsync is not in the request path: HAProxy keeps serving with the config it has. Restarted, confsync renders
the same routers into the same file, sees nothing to write, and does not reload HAProxy.
"""

from __future__ import annotations

import time

from reliability.core import Result, scenario
from reliability.entrance import Entrance
from reliability.parts import Stack, wait_for

GOAL = ("0 failed requests while confsync is dead and after its restart; the restarted confsync resumes its "
        "watch, leaves haproxy.cfg as it was and makes 0 reloads")


@scenario("confsync_kill", GOAL)
def run(quick: bool) -> Result:
    kills, gap = (1, 1.0) if quick else (3, 8.0)
    with Stack("confsync-kill") as stack:
        up = Entrance(stack, routers=2).start()
        up.settle()
        reloads_before, digest_before = up.reloads(), up.haproxy_cfg_digest()
        load = up.load(150.0, 6)
        time.sleep(2.0)
        back_after = []
        for _ in range(kills):
            watches = up.watch_starts()
            old = up.kill("confsync")
            killed = time.monotonic()
            up.wait_restarted("confsync", old)
            wait_for(lambda w=watches: up.watch_starts() > w, timeout=60, interval=0.05,
                     message="the restarted confsync watching etcd")
            back_after.append(time.monotonic() - killed)
            time.sleep(gap)
        stats = load.stop()
        reloads = up.reloads() - reloads_before
        unchanged = up.haproxy_cfg_digest() == digest_before
        figures: dict[str, object] = {"confsync killed (SIGKILL)": kills}
        figures |= stats.figures()
        figures["confsync watching again, s after the kill (restart after 1 s)"] = round(max(back_after), 2)
        figures["HAProxy reloads by the restarted confsync"] = reloads
        figures["haproxy.cfg unchanged"] = unchanged
    return Result(figures, met=stats.failed == 0 and stats.sent > 0 and reloads == 0 and unchanged)
