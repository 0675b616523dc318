"""Real redis-server and ZooKeeper processes on free 127.0.0.1 ports for the confsync backend tests.

redis-server is Debian's package (scripts/test installs it when missing); ZooKeeper is Debian's `zookeeper`
package run as a standalone server (ZooKeeperServerMain) with Java. Both are stopped by the fixtures.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from portico.stack.processes import ManagedProcess, free_port, wait_for_port
from portico.stack.servers import RunningServer

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def zookeeper_available() -> bool:
    return ZOOKEEPER_JAR.is_file() and shutil.which("java") is not None


def start_redis(workdir: Path, *, keyspace_events: str = "KA") -> RunningServer:
    """redis-server bound to 127.0.0.1, no persistence, keyspace notifications on (what confd's watch needs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(port),
            "--save", "", "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes",
            "--notify-keyspace-events", keyspace_events]
    proc = ManagedProcess("redis-server", argv, workdir / "redis.log").start()
    try:
        wait_for_port(port, timeout=30, process=proc.popen)
    except Exception:
        proc.stop()
        raise
    return RunningServer(proc, "127.0.0.1", port, f"127.0.0.1:{port}")


def start_zookeeper(workdir: Path) -> RunningServer:
    """A standalone ZooKeeper on 127.0.0.1 (admin server off), data in workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cfg = workdir / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={workdir / 'data'}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                   "admin.enableServer=false\nmaxClientCnxns=60\n")
    argv = [shutil.which("java") or "java", "-Xmx128m", "-Dzookeeper.jmx.log4j.disable=true",
            "-cp", str(ZOOKEEPER_JAR), "org.apache.zookeeper.server.ZooKeeperServerMain", str(cfg)]
    proc = ManagedProcess("zookeeper", argv, workdir / "zookeeper.log").start()
    try:
        wait_for_port(port, timeout=60, process=proc.popen)
    except Exception:
        proc.stop()
        raise
    return RunningServer(proc, "127.0.0.1", port, f"127.0.0.1:{port}")
