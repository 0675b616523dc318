"""AccessLog: exact gorouter lines, buffering, timed and final flushes, appending and rotation."""

from __future__ import annotations

import asyncio
import calendar
import os

import pytest

from portico.observe import access_log as access_log_module
from portico.observe.access_log import AccessLog
from portico.observe.log_quoting import header_field_name, quote_value

START = calendar.timegm((2021, 6, 23, 15, 7, 22, 0, 0, 0)) + 0.980439  # 2021-06-23T15:07:22.980439Z


def sample(**overrides) -> dict:
    fields = dict(
        host="test.a.com", start_time=START, method="GET", uri="/whatever/nl/?a=1", proto="HTTP/1.1",
        status=200, request_bytes=12, response_bytes=345, referer="http://ref.example/",
        user_agent="curl/8.0", client_addr="10.0.0.1:51234", backend_addr="10.90.2.103:9100",
        x_forwarded_for="1.2.3.4, 10.0.0.1", x_forwarded_proto="https",
        vcap_request_id="fba6ae99-bf95-4dcb-76d0-951fbb2f1c56", response_time=0.024618, gorouter_time=0.000123,
        app_id="d1ceed06", app_index="0", instance_id="inst-1", router_error="", extra_values=(),
    )
    fields.update(overrides)
    return fields


_FIELDS = ("host", "method", "uri", "proto", "referer", "user_agent", "client_addr", "backend_addr",
           "x_forwarded_for", "x_forwarded_proto", "vcap_request_id", "app_id", "app_index", "instance_id",
           "router_error")


def write(log: AccessLog, **values) -> None:
    """Call the proxy's own entry point, `log()`, with its positional bytes tuple (as ExchangeObserver does)."""
    fields = tuple(b"" if values[k] is None else str(values[k]).encode() for k in _FIELDS)
    fields += tuple(str(v).encode() for v in values["extra_values"])
    log.log(values["start_time"], values["status"], values["request_bytes"], values["response_bytes"],
            values["response_time"], values["gorouter_time"], fields)


def read(path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def test_exact_line(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    write(log, **sample())
    log.close()
    [line] = read(path)
    assert line == (
        'test.a.com - [2021-06-23T15:07:22.980439000Z] "GET /whatever/nl/?a=1 HTTP/1.1" 200 12 345 '
        '"http://ref.example/" "curl/8.0" "10.0.0.1:51234" "10.90.2.103:9100" '
        'x_forwarded_for:"1.2.3.4, 10.0.0.1" x_forwarded_proto:"https" '
        'vcap_request_id:"fba6ae99-bf95-4dcb-76d0-951fbb2f1c56" response_time:0.024618 gorouter_time:0.000123 '
        'app_id:"d1ceed06" app_index:"0" instance_id:"inst-1" x_cf_routererror:"-"'
    )


def test_empty_values_are_dashes(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    write(log, **sample(referer="", user_agent=None, backend_addr="", x_forwarded_for="", x_forwarded_proto="",
                        vcap_request_id="", app_id="", app_index="", instance_id="", router_error="unknown_route",
                        status=404, response_bytes=0, start_time=float(int(START))))
    log.close()
    [line] = read(path)
    assert "[2021-06-23T15:07:22.000000000Z]" in line
    assert (' 404 12 0 "-" "-" "10.0.0.1:51234" "-" x_forwarded_for:"-" x_forwarded_proto:"-" '
            'vcap_request_id:"-" ') in line
    assert line.endswith('app_id:"-" app_index:"-" instance_id:"-" x_cf_routererror:"unknown_route"')


def test_quotes_and_newlines_are_escaped(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    write(log, **sample(user_agent='evil "agent"\nfake line', referer="back\\slash"))
    write(log, **sample(start_time=calendar.timegm((2021, 6, 23, 23, 59, 59, 0, 0, 0)) + 0.9999997))
    log.close()
    line, rounded = read(path)
    assert "[2021-06-24T00:00:00.000000000Z]" in rounded  # rounding to microseconds carries into the second
    assert '"evil \\"agent\\"\\nfake line"' in line
    assert '"back\\\\slash"' in line
    assert quote_value(3) == "3" and quote_value("") == "-" and quote_value(None) == "-"


def test_extra_headers(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog(str(path), extra_headers=("Span-Id", "X-B3-TraceId", "True-Client-IP"))
    write(log, **sample(extra_values=("abc", "", 'x"y')))
    write(log, **sample(extra_values=()))
    log.close()
    first, second = read(path)
    assert first.endswith('x_cf_routererror:"-" span_id:"abc" x_b3_traceid:"-" true_client_ip:"x\\"y"')
    assert second.endswith('x_cf_routererror:"-" span_id:"-" x_b3_traceid:"-" true_client_ip:"-"')
    assert header_field_name("Span-Id") == "span_id"


def test_log_does_not_write_until_flush(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    write(log, **sample())
    assert path.read_text() == ""
    log.flush()
    assert len(read(path)) == 1
    log.close()


async def test_flush_on_timer_and_on_close(tmp_path, monkeypatch):
    monkeypatch.setattr(access_log_module, "FLUSH_INTERVAL", 0.05)
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    log.start(asyncio.get_running_loop())
    write(log, **sample(uri="/one"))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if path.read_text():
            break
    assert len(read(path)) == 1
    write(log, **sample(uri="/two"))
    log.close()
    lines = read(path)
    assert len(lines) == 2 and '"GET /two HTTP/1.1"' in lines[1]
    log.close()  # twice is fine


def test_appends_never_truncates(tmp_path):
    path = tmp_path / "access.log"
    path.write_text("existing line\n")
    log = AccessLog(str(path))
    write(log, **sample())
    log.close()
    lines = read(path)
    assert lines[0] == "existing line" and len(lines) == 2


def test_burst_flushes_early(tmp_path, monkeypatch):
    monkeypatch.setattr(access_log_module, "MAX_BUFFERED_LINES", 10)
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    for _ in range(10):
        write(log, **sample())
    assert len(read(path)) == 10
    log.close()


@pytest.mark.parametrize("how", ["renamed", "deleted"])
def test_reopens_after_rotation(tmp_path, monkeypatch, how):
    monkeypatch.setattr(access_log_module, "ROTATION_CHECK_INTERVAL", 0.0)
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    write(log, **sample(uri="/before"))
    log.flush()
    if how == "renamed":
        os.rename(path, tmp_path / "access.log.1")
    else:
        os.unlink(path)
    write(log, **sample(uri="/after"))
    log.flush()
    log.close()
    assert len(read(path)) == 1 and "/after" in read(path)[0]
    if how == "renamed":
        rotated = read(tmp_path / "access.log.1")
        assert len(rotated) == 1 and "/before" in rotated[0]


def test_rotation_check_is_rate_limited(tmp_path, monkeypatch):
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(access_log_module.os, "stat", lambda p, *a, **k: stats.append(p) or real_stat(p, *a, **k))
    for _ in range(20):
        write(log, **sample())
        log.flush()
    assert len(stats) <= 1
    log.close()


def test_write_error_does_not_raise(tmp_path, caplog):
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    os.close(log._fd)  # simulate a broken descriptor
    log._fd = os.open(os.devnull, os.O_RDONLY)
    write(log, **sample())
    log.flush()  # EBADF on write: logged, not raised
    assert "write failed" in caplog.text
    log.close()


def test_integer_index_zero_is_not_empty(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    write(log, **sample(app_index=0, response_time=None))
    log.close()
    [line] = read(path)
    assert 'app_index:"0"' in line and "response_time:- " in line


def test_a_batch_grows_past_its_first_size_and_is_given_back_after_a_flush(tmp_path):
    """Lines longer than the batch's first size (here one 300 kB user agent, then 20 lines of 200 kB past
    KEEP_BUFFER_BYTES) arrive whole and in order; after the flush the batch is small again."""
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    big = "a" * (access_log_module.INITIAL_BUFFER_BYTES * 5)
    write(log, **sample(user_agent=big))
    for i in range(20):
        write(log, **sample(uri=f"/{i}/" + "u" * 200_000))
    write(log, **sample(user_agent="small"))
    log.flush()
    assert len(log._buffer) == access_log_module.INITIAL_BUFFER_BYTES
    write(log, **sample(uri="/after"))
    log.close()
    lines = read(path)
    assert len(lines) == 23
    assert f'"{big}"' in lines[0] and lines[0].endswith('x_cf_routererror:"-"')
    assert all(f"GET /{i}/uuu" in lines[1 + i] and lines[1 + i].endswith('x_cf_routererror:"-"') for i in range(20))
    assert '"small"' in lines[21] and "GET /after HTTP/1.1" in lines[22]
