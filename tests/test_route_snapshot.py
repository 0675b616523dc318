"""The route snapshot: table -> bytes -> table with remaining TTLs (pure), and the file keeper (real files)."""

from __future__ import annotations

import json
import os

import pytest

from portico.config.settings import RouteSnapshotSettings
from portico.route_snapshot import RouteSnapshotKeeper, default_snapshot_path, write_atomically
from portico.routes.endpoint import Endpoint, make_endpoint
from portico.routes.snapshot import SnapshotError, restore, serialise
from portico.routes.table import RouteTable


def _table(now: float) -> RouteTable:
    table = RouteTable(droplet_stale_threshold=120)
    table.register("app.example.com", make_endpoint("10.0.0.1", 8080, ttl=120, app_id="app-guid",
                                               private_instance_id="iid", private_instance_index="2",
                                               tags={"component": "x"}, updated_at=now - 20))
    table.register("app.example.com", Endpoint("10.0.0.2", 8080, ttl=30, updated_at=now - 25))
    table.register("*.wild.example.com/api", Endpoint("10.0.0.3", 9000, ttl=120, updated_at=now,
                                                      load_balancing_algorithm="least-connection"))
    table.register("gone.example.com", Endpoint("10.0.0.4", 80, ttl=10, updated_at=now - 11))
    table.register("secure.example.com", Endpoint("10.0.0.5", 443, tls=True, ttl=60,
                                                  server_cert_domain_san="secure", updated_at=now - 5))
    return table


def test_round_trip_keeps_routes_fields_and_remaining_ttl() -> None:
    data = serialise(_table(1000.0), now=1000.0, wall=50_000.0)
    fresh = RouteTable(droplet_stale_threshold=120)
    # the new process's monotonic clock is unrelated to the old one; 3 s passed on the wall clock
    assert restore(fresh, data, now=7.0, wall=50_003.0) == 4
    pool = fresh.lookup("app.example.com")
    assert pool is not None
    first = pool.find("10.0.0.1:8080")
    assert first is not None
    assert (first.app_id, first.private_instance_id, first.private_instance_index, first.tags) == (
        "app-guid", "iid", "2", {"component": "x"})
    # 120 s TTL, 20 s old at the snapshot, 3 s down: 97 s left, so it is 23 s old on the new clock
    assert first.updated_at == pytest.approx(7.0 - 23.0)
    second = pool.find("10.0.0.2:8080")
    assert second is not None and second.updated_at == pytest.approx(7.0 - 28.0)
    wild = fresh.lookup("x.wild.example.com", "/api/v1")
    assert wild is not None and wild.algorithm == "least-connection"
    tls = fresh.lookup("secure.example.com")
    assert tls is not None and tls.endpoints[0].tls and tls.endpoints[0].server_cert_domain_san == "secure"
    assert fresh.lookup("gone.example.com") is None          # its TTL had run out before the snapshot


def test_restored_endpoints_are_pruned_when_their_ttl_ends() -> None:
    data = serialise(_table(1000.0), now=1000.0, wall=50_000.0)
    fresh = RouteTable(droplet_stale_threshold=120)
    restore(fresh, data, now=0.0, wall=50_003.0)
    assert [ep.address for _, ep in fresh.prune(now=1.0)] == []
    # 10.0.0.2 had 5 s left at the snapshot, 3 s were spent down: gone 2 s after the restart
    assert [ep.address for _, ep in fresh.prune(now=2.5)] == ["10.0.0.2:8080"]


def test_endpoints_whose_ttl_ran_out_while_down_are_not_restored() -> None:
    data = serialise(_table(1000.0), now=1000.0, wall=50_000.0)
    fresh = RouteTable(droplet_stale_threshold=120)
    # 99 s later: 10.0.0.1 (100 s left) and the wildcard's endpoint (120 s left) survive, the rest ran out
    assert restore(fresh, data, now=0.0, wall=50_000.0 + 99.0) == 2
    assert {ep.address for pool in fresh.pools() for ep in pool.endpoints} == {"10.0.0.1:8080", "10.0.0.3:9000"}
    assert restore(RouteTable(), data, now=0.0, wall=50_000.0 + 3600) == 0


def test_a_table_is_written_and_read_a_line_of_routes_at_a_time(monkeypatch) -> None:
    from portico.routes import snapshot
    monkeypatch.setattr(snapshot, "PIECE_POOLS", 3)
    table = RouteTable(droplet_stale_threshold=120)
    for i in range(10):
        table.register(f"r{i}.example.com", Endpoint("10.0.0.1", 1000 + i, ttl=120, updated_at=100.0))
    lines = list(snapshot.serialise_pieces(table, now=100.0, wall=9_000.0))
    assert len(lines) == 1 + 4 and all(line.endswith(b"\n") for line in lines)   # head + 3+3+3+1 routes
    fresh = RouteTable(droplet_stale_threshold=120)
    assert snapshot.restore_lines(fresh, iter(lines), now=0.0, wall=9_001.0) == 10
    assert fresh.snapshot() == table.snapshot()


def test_a_snapshot_of_the_older_single_document_format_still_loads() -> None:
    entry = {"host": "10.0.0.7", "port": 80, "tls": False, "app_id": "a", "private_instance_id": "i",
             "private_instance_index": "0", "server_cert_domain_san": "", "route_service_url": "", "tags": None,
             "ttl": 120.0, "isolation_segment": "", "protocol": "http1", "availability_zone": "",
             "load_balancing_algorithm": "", "updated_at_ns": 0, "ttl_left": 60.0}
    data = json.dumps({"format": 1, "written_at": 500.0, "routes": {"old.example.com": [entry]}}).encode()
    table = RouteTable()
    assert restore(table, data, now=0.0, wall=510.0) == 1
    assert table.lookup("old.example.com") is not None


@pytest.mark.parametrize("data, why", [
    (b"not json", "not JSON"),
    (b"[]", "format"),
    (b'{"format": 99, "written_at": 1, "routes": {}}', "format"),
    (b'{"format": 1, "routes": {}}', "written_at"),
    (b'{"format": 1, "written_at": 1, "routes": {"a.com": [{"host": "h"}]}}', "lacks a field"),
    (b'{"format": 2, "written_at": 1}\n{"a.com": [{"host": "h"}]}', "lacks a field"),
    (b'{"format": 2, "written_at": 1}\n{"a.com": [', "not JSON"),
    (b'{"format": 2, "written_at": 1}\n[1]', "not a JSON object"),
])
def test_bad_snapshots_are_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(SnapshotError, match=why):
        restore(RouteTable(), data, now=0.0, wall=1.0)


def test_default_path_is_in_the_state_directory_keyed_by_port(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_snapshot_path(8081) == tmp_path / "portico" / "routes-8081.json"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert str(default_snapshot_path(80)).endswith(".local/state/portico/routes-80.json")


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path) -> None:
    path = tmp_path / "deep" / "routes.json"
    write_atomically(path, b"one")
    write_atomically(path, b"two")
    assert path.read_bytes() == b"two"
    assert os.listdir(path.parent) == ["routes.json"]
    assert path.stat().st_mode & 0o777 == 0o600


async def test_keeper_writes_on_stop_and_a_new_keeper_loads_it(tmp_path) -> None:
    settings = RouteSnapshotSettings(file=str(tmp_path / "s.json"), interval=3600)
    clock = iter([100.0, 5.0])
    keeper = RouteSnapshotKeeper(settings, 8081, _table(100.0), clock=lambda: next(clock), wall=lambda: 10.0)
    keeper.start()
    await keeper.stop()
    assert json.loads((tmp_path / "s.json").read_bytes().splitlines()[0])["format"] == 2
    table = RouteTable()
    loader = RouteSnapshotKeeper(settings, 8081, table, writer=False, clock=lambda: 5.0, wall=lambda: 11.0)
    assert loader.load() == 4 and table.lookup("app.example.com") is not None


def test_keeper_survives_missing_corrupt_and_disabled_files(tmp_path, caplog) -> None:
    path = tmp_path / "s.json"
    keeper = RouteSnapshotKeeper(RouteSnapshotSettings(file=str(path)), 8081, RouteTable())
    assert keeper.load() == 0                        # no file yet: a first start
    path.write_bytes(b"{half a file")
    assert keeper.load() == 0
    assert "ignored" in caplog.text and str(path) in caplog.text
    path.write_bytes(serialise(_table(0.0), now=0.0, wall=0.0))
    off = RouteSnapshotKeeper(RouteSnapshotSettings(enabled=False, file=str(path)), 8081, RouteTable())
    assert off.load() == 0 and not off.writer


def test_config_keys_and_their_errors(tmp_path) -> None:
    from portico.config.loader import ConfigError, load_config

    path = tmp_path / "gorouter.yml"
    path.write_text("route_snapshot:\n  enabled: false\n  file: /var/lib/portico/routes.json\n  interval: 5s\n")
    config = load_config(path)
    assert config.route_snapshot == RouteSnapshotSettings(enabled=False, file="/var/lib/portico/routes.json",
                                                          interval=5.0)
    assert load_config(_write(tmp_path, "port: 8081\n")).route_snapshot == RouteSnapshotSettings()
    with pytest.raises(ConfigError, match="interval"):
        load_config(_write(tmp_path, "route_snapshot:\n  interval: 0s\n"))


def _write(tmp_path, text: str):
    path = tmp_path / "other.yml"
    path.write_text(text)
    return path


def test_every_snapshot_field_is_written() -> None:
    from portico.routes import snapshot
    data = serialise(_table(1000.0), now=1000.0, wall=1.0)
    entry = json.loads(data.splitlines()[1])["app.example.com"][0]
    assert set(entry) == {*snapshot._FIELDS, "ttl_left"}
