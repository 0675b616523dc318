"""Log lines: gorouter's JSON shape for pipelines (both timestamp formats), text on a terminal, file and
source (logging.syslog) as in gorouter; the router process itself checked through a file and a real pty."""

from __future__ import annotations

import json
import logging
import os
import pty
import select
import signal
import subprocess
import sys
import time

import yaml

from portico.logs import JsonLineFormatter, TextFormatter, choose_format, rfc3339, setup_logging
from portico.stack.processes import free_port


def _record(level: int = logging.INFO, name: str = "portico.bus", msg: str = "hello %s", args=("there",),
            **extra) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    record.created = 1700000000.25
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_line_has_gorouters_shape_with_epoch_timestamp():
    line = json.loads(JsonLineFormatter("unix-epoch", "vcap.gorouter").format(_record(data={"route": "a.com"})))
    assert list(line) == ["log_level", "timestamp", "message", "source", "data"]
    assert line == {"log_level": 1, "timestamp": 1700000000.25, "message": "hello there",
                    "source": "vcap.gorouter.bus", "data": {"route": "a.com"}}


def test_rfc3339_timestamp_and_level_numbers():
    fmt = JsonLineFormatter("rfc3339", "portico", {"worker": 2})
    line = json.loads(fmt.format(_record(logging.ERROR, name="portico")))
    assert line["timestamp"] == "2023-11-14T22:13:20.250000000Z" and line["log_level"] == 3
    assert line["source"] == "portico" and line["data"] == {"worker": 2}
    levels = [json.loads(fmt.format(_record(n)))["log_level"]
              for n in (logging.DEBUG, logging.INFO, logging.WARNING, logging.CRITICAL)]
    assert levels == [0, 1, 2, 5]
    assert rfc3339(0.9999999) == "1970-01-01T00:00:01.000000000Z"


def test_exceptions_go_in_data():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("portico.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(JsonLineFormatter().format(record))
    assert "ValueError: boom" in line["data"]["error"]


def test_text_for_people():
    text = TextFormatter("[w1] ").format(_record(logging.WARNING, data={"n": 3}))
    assert " warn  [w1] portico.bus: hello there n=3" in text


def test_auto_format_follows_the_terminal():
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w") as tty:
            assert choose_format("auto", tty) == "text"
    finally:
        os.close(master)
    with open(os.devnull, "w") as null:
        assert choose_format("auto", null) == "json"
        assert choose_format("text", null) == "text"
    assert choose_format("auto", None) == "json"  # a file


def test_setup_logging_writes_json_to_the_file_at_its_level(tmp_path):
    path = tmp_path / "router.log"
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("warn", str(path), timestamp="unix-epoch", source="vcap.gorouter")
        logging.getLogger("portico.router").info("not shown")
        logging.getLogger("portico.router").warning("shown %d", 1)
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(x["message"], x["log_level"], x["source"]) for x in lines] == [("shown 1", 2, "vcap.gorouter.router")]
    assert isinstance(lines[0]["timestamp"], float)


def _router_config(tmp_path, **logging_keys) -> str:
    config = {"port": free_port(), "listen_host": "127.0.0.1", "status": {"host": "127.0.0.1", "port": free_port(),
              "routes": {"port": free_port()}}, "nats": {"hosts": [{"hostname": "127.0.0.1", "port": free_port()}]},
              "logging": {"level": "info", **logging_keys}}
    path = tmp_path / "gorouter.yml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _read_until(fd: int, needle: bytes, timeout: float = 20.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


def test_router_logs_text_on_a_terminal_and_json_to_a_pipe(tmp_path):
    """No NATS is listening: the router logs that it cannot connect, readable on a tty, JSON on a pipe."""
    argv = [sys.executable, "-m", "portico", "router", "-c", _router_config(tmp_path)]
    master, slave = pty.openpty()
    tty_proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    pipe_proc = subprocess.Popen([*argv[:-1], _router_config(tmp_path / "..", format={"timestamp": "unix-epoch"})],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        text = _read_until(master, b"NATS").decode(errors="replace")
        assert "NATS" in text and not text.lstrip().startswith("{")
        assert " portico." in text
        first = json.loads(_read_until(pipe_proc.stderr.fileno(), b"\n").splitlines()[0])
        assert set(first) == {"log_level", "timestamp", "message", "source", "data"}
        assert isinstance(first["timestamp"], float) and first["source"].startswith("portico")
        for proc in (tty_proc, pipe_proc):  # SIGTERM stops a router still waiting for NATS, cleanly
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
    finally:
        for proc in (tty_proc, pipe_proc):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        os.close(master)
        pipe_proc.stderr.close()
