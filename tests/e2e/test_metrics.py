"""A real router's /metrics and /varz after real traffic: labelled series, histograms, per-route series,
gorouter's /varz fields, every worker counted, and the Grafana dashboard querying only series that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from polling import wait_for
from prometheus_client.parser import text_string_to_metric_families
from support import get, nats_publish, unique_host

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana" / "portico.json"


def scrape(router) -> dict:
    status, _, body = router._get_status(router.status_port, "/metrics", auth=False)
    assert status == 200
    out: dict = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def busy(router_factory, backend):
    """One router with known traffic: 12 answered requests on a route, 3 unknown-route 404s, 1 malformed msg."""
    router = router_factory()
    host = unique_host("metrics")
    router.register(host, backend.port, app="app-metrics")
    for _ in range(12):
        assert get(router.port, host, "/echo").status == 200
    for _ in range(3):
        assert get(router.port, unique_host("nowhere")).status == 404
    nats_publish(router.nats_url, "router.register", b"{not json")
    wait_for(lambda: value(scrape(router), "portico_malformed_messages_total") >= 1, message="malformed counted")
    return router, host


def test_labelled_series_and_histograms(busy):
    router, host = busy
    s = scrape(router)
    assert value(s, "portico_http_requests_total", code="2xx") >= 12
    assert value(s, "portico_http_requests_total", code="4xx") >= 3
    assert value(s, "portico_router_errors_total", code="unknown_route") == 3
    assert value(s, "portico_registrations_total") >= 1
    count = value(s, "portico_http_request_duration_seconds_count")
    assert count >= 15 and value(s, "portico_http_request_duration_seconds_bucket", le="+Inf") == count
    assert value(s, "portico_http_request_duration_seconds_sum") > 0
    assert value(s, "portico_backend_latency_seconds_count") >= 12
    assert value(s, "portico_route_requests_total", route=host) == 12
    assert value(s, "portico_route_request_duration_seconds_count", route=host) == 12
    assert value(s, "portico_route_errors_total", route=host) == 0
    assert value(s, "portico_routes") >= 1 and value(s, "portico_endpoints") >= 1
    assert value(s, "portico_nats_connected") == 1
    assert 0 <= value(s, "portico_seconds_since_registry_update") < 60


def test_varz_fields_operators_script_against(busy):
    router, _ = busy
    varz = router.varz()
    assert varz["responses_2xx"] >= 12 and varz["responses_4xx"] >= 3
    assert varz["ms_since_last_registry_update"] >= 0
    assert len(varz["rate"]) == 3 and varz["requests_per_sec"] >= 0
    # percentiles come from the last minute of snapshots, taken once a second
    latency = wait_for(lambda: router.varz()["latency"] if router.varz()["latency"]["99"] > 0 else None,
                       message="latency percentiles")
    assert 0 < latency["50"] <= latency["99"] < 5
    apps = wait_for(lambda: router.varz()["top10_app_requests"], message="top apps")
    assert apps[0]["application_id"] == "app-metrics" and apps[0]["rpm"] == 12


def test_every_grafana_series_exists(busy):
    router, _ = busy
    dashboard = json.loads(GRAFANA.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    names = {n for e in exprs for n in re.findall(r"\bportico_[a-z0-9_]+", e)}
    assert len(names) >= 15
    present = {name for name, _ in scrape(router)}
    assert sorted(names - present) == []
    # every label a panel groups by is on the series it groups
    samples = scrape(router)
    for expr in exprs:
        for labels, inner in re.findall(r"by \(([a-z, ]+)\) \(\w+\((portico_[a-z_]+)", expr):
            for label in (x.strip() for x in labels.split(",")):
                assert any(n == inner and label in dict(lbls) for n, lbls in samples), (expr, label)


def test_workers_are_added_up(router_factory, backend):
    router = router_factory(workers=2)
    host = unique_host("workers")
    router.register(host, backend.port)
    for _ in range(30):  # each on a new connection, spread over both workers by the kernel
        assert get(router.port, host, "/echo").status == 200
    wait_for(lambda: value(scrape(router), "portico_route_requests_total", route=host) == 30, timeout=15,
             message="both workers' requests in /metrics")
    s = scrape(router)
    assert value(s, "portico_workers") == 2
    assert value(s, "portico_http_request_duration_seconds_count") >= 30


def test_per_route_series_only_for_the_busiest(router_factory, backend):
    router = router_factory(metrics={"per_route_top": 1})
    busier, quieter = unique_host("busier"), unique_host("quieter")
    router.register(busier, backend.port)
    router.register(quieter, backend.port)
    for host, n in ((busier, 3), (quieter, 1)):
        for _ in range(n):
            assert get(router.port, host, "/echo").status == 200
    s = scrape(router)
    routes = {dict(labels)["route"] for name, labels in s if name == "portico_route_requests_total"}
    assert routes == {busier}
    assert value(s, "portico_http_requests_total", code="2xx") >= 4  # router-wide counts keep every route
