"""Issue 13's control-plane goals from one run: route scale, memory per route, ingest, publish-to-routable and the
1,000,000-route case. Rows have report.evaluate_targets' shape; `million_section` is the 1M case's table."""

from __future__ import annotations

from .repeats import goal_spread

GOROUTER = {
    "route_scale_100k": "0.33x",
    "rss_per_route": "~9.4 KB",
    "ingest": "~44k msg/s",
    "routable_p99": "~1.6 ms",
}

INGEST_GOAL = 300_000           # messages/s
ROUTABLE_P99_GOAL_MS = 0.5
BYTES_PER_ROUTE_GOAL = 600
SCALE_RATIO_GOAL = 0.95         # 100k routes against 1
MILLION_APPLY_GOAL_S = 10.0
MILLION_RSS_GOAL_KB = 1024 * 1024
MILLION_RATIO_GOAL = 0.9


def _n(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def control_plane_targets(res: dict) -> list[dict]:
    rows: list[dict] = []

    def row(name: str, goal: str, value: str, met: bool | None, ref: str = "") -> None:
        rows.append({"name": name, "goal": goal, "value": value, "met": met, "gorouter": ref})

    scale = res.get("route_scale") or []
    big = max(scale, key=lambda s: s["routes"]) if scale else None
    if big and big["routes"] > 1 and big.get("ratio_to_1") is not None:
        row(f"Throughput with {big['routes']:,} routes vs 1 route", f">= {SCALE_RATIO_GOAL:.2f}x",
            f"{big['ratio_to_1']:.2f}x" + _in_brackets(goal_spread(big, "ratio_to_1", _x)),
            big["ratio_to_1"] >= SCALE_RATIO_GOAL, GOROUTER["route_scale_100k"])
        bpr, table_only = big.get("bytes_per_route"), big.get("bytes_per_route_table")
        value = f"{bpr:.0f} B after traffic to every route" if bpr is not None else "-"
        value += _in_brackets(goal_spread(big, "bytes_per_route", _b))
        if table_only is not None:
            value += (f" ({table_only:.0f} B for the table alone, before traffic"
                      + _then(goal_spread(big, "bytes_per_route_table", _b)) + ")")
        row(f"Resident memory per route ({big['routes']:,} routes)", f"<= {BYTES_PER_ROUTE_GOAL} B", value,
            bpr is not None and bpr <= BYTES_PER_ROUTE_GOAL, GOROUTER["rss_per_route"])
    else:
        row("Throughput with 100k routes vs 1 route", f">= {SCALE_RATIO_GOAL:.2f}x", "not measured", None,
            GOROUTER["route_scale_100k"])
        row("Resident memory per route", f"<= {BYTES_PER_ROUTE_GOAL} B", "not measured", None,
            GOROUTER["rss_per_route"])
    ing = res.get("ingest")
    if ing:
        ok = not ing.get("notes")
        row("Registration ingest", f">= {INGEST_GOAL // 1000}k msg/s",
            f"{_n(ing['msgs_per_s'])} msg/s ({ing['messages']:,} messages; "
            f"{_n(ing.get('msgs_per_cpu_s'))} per router CPU-second"
            + _then(goal_spread(ing, "msgs_per_s", _n)) + ")",
            ing["msgs_per_s"] >= INGEST_GOAL and ok, GOROUTER["ingest"])
        p99 = ing.get("routable_p99_ms")
        row("Publish-to-routable p99", f"<= {ROUTABLE_P99_GOAL_MS} ms", _routable_value(ing),
            p99 is not None and p99 <= ROUTABLE_P99_GOAL_MS and not ing.get("routable_timeouts"),
            GOROUTER["routable_p99"])
    else:
        row("Registration ingest", f">= {INGEST_GOAL // 1000}k msg/s", "not measured", None, GOROUTER["ingest"])
        row("Publish-to-routable p99", f"<= {ROUTABLE_P99_GOAL_MS} ms", "not measured", None,
            GOROUTER["routable_p99"])
    rows += _million_rows(res.get("million"))
    return rows


def _routable_value(ing: dict) -> str:
    """The p99, its sample count, where the chain splits (NATS hop / router), the floor under it (a proxied
    request's own p99 in the same loop) and the host's share (steal, run-queue wait)."""
    p99 = ing.get("routable_p99_ms")
    if p99 is None:
        return "-"
    floor = ing.get("request_p99_ms")
    applied = ing.get("applied_p99_ms")
    delivered = ing.get("delivered_p99_ms")
    if delivered is not None:
        split = (f"; publish -> delivered by NATS p99 {_n(delivered, 3)} ms, delivered -> routable p99 "
                 f"{_n(ing.get('after_delivery_p99_ms'), 3)} ms")
    elif applied is not None:
        split = (f"; publish -> applied p99 {_n(applied, 3)} ms, applied -> first answer p99 "
                 f"{_n(ing.get('first_request_p99_ms'), 3)} ms")
    else:
        split = ""
    host = ""
    if ing.get("steal_router_cpus") is not None:
        host = f"; steal {ing['steal_router_cpus'] * 100:.1f}% on the router's CPU"
        if ing.get("router_runq_wait_us_per_sample") is not None:
            host += f", the router waited {_n(ing['router_runq_wait_us_per_sample'])} us a sample for a CPU"
    return (f"{_n(p99, 3)} ms ({ing.get('latency_samples', 0):,} samples"
            + _then(goal_spread(ing, "routable_p99_ms", lambda v: _n(v, 3))) + split
            + (f"; a proxied request alone: p99 {_n(floor, 3)} ms" if floor is not None else "")
            + (f"; {ing['floor_name']} at the same pace: p99 {_n(ing.get('floor_p99_ms'), 3)} ms"
               if ing.get("floor_name") else "") + host + ")")


def _x(value: float) -> str:
    return f"{value:.2f}x"


def _b(value: float) -> str:
    return f"{value:.0f} B"


def _in_brackets(words: str) -> str:
    return f" ({words})" if words else ""


def _then(words: str) -> str:
    return f"; {words}" if words else ""


def _million_rows(m: dict | None) -> list[dict]:
    names = ("1,000,000 routes: applied", "1,000,000 routes: router RSS", "1,000,000 routes: throughput vs 1 route",
             "1,000,000 routes: /routes answers (streamed)")
    goals = (f"<= {MILLION_APPLY_GOAL_S:.0f} s", "<= 1 GiB", f">= {MILLION_RATIO_GOAL}x", "200, every route listed")
    if not m:
        return [{"name": n, "goal": g, "value": "not measured", "met": None, "gorouter": ""}
                for n, g in zip(names, goals, strict=True)]
    label = f"{m['routes']:,} routes"
    names = tuple(n.replace("1,000,000 routes", label) for n in names)
    rss = max(m.get("rss_kb_applied") or 0, m.get("rss_kb_after_load") or 0, m.get("routes_rss_peak_kb") or 0)
    applied = m.get("applied_s")
    ratio = m.get("ratio_to_1")
    listed_ok = m.get("routes_status") == 200 and m.get("routes_listed") == m["routes"]
    values = (
        (f"{applied:.2f} s ({_n(m.get('applied_msgs_per_s'))} routes/s)" if applied is not None else "-",
         applied is not None and applied <= MILLION_APPLY_GOAL_S and not m.get("sample_failures")),
        (f"{rss / 1024:.0f} MiB at most (applied, under load, while /routes streamed); "
         f"{_n(m.get('bytes_per_route'))} B/route", rss > 0 and rss <= MILLION_RSS_GOAL_KB),
        (_million_ratio_value(m) if ratio is not None else "-",
         ratio is not None and ratio >= MILLION_RATIO_GOAL),
        (f"{m.get('routes_status')}, {m.get('routes_listed', 0):,} routes, {m.get('routes_bytes', 0) / 1e6:.0f} MB "
         f"in {_n(m.get('routes_s'), 1)} s (first byte after {_n(m.get('routes_first_byte_s'), 3)} s)", listed_ok),
    )
    return [{"name": n, "goal": g, "value": v, "met": met, "gorouter": ""}
            for n, g, (v, met) in zip(names, goals, values, strict=True)]


def _million_ratio_value(m: dict) -> str:
    """The goal's ratio (alternating runs after loading), and the 1-route figure from before loading beside it."""
    if m.get("one_route_rps") is None:   # results from before the alternating runs: n routes / the baseline
        return f"{m['ratio_to_1']:.2f}x ({_n(m.get('rps'))} vs {_n(m.get('baseline_rps'))} req/s)"
    return (f"{m['ratio_to_1']:.2f}x ({_n(m.get('rps'))} vs {_n(m.get('one_route_rps'))} req/s, alternating on one "
            f"router; the 1 route before loading: {_n(m.get('baseline_rps'))} req/s)")


def million_section(m: dict | None) -> list[str]:
    if not m:
        return []
    mib = lambda kb: "-" if not kb else f"{kb / 1024:.1f}"  # noqa: E731
    out = [f"## {m['routes']:,} routes (Portico, one router, random Host per request)", "",
           "1 route first (measured before loading, for reference), then the rest published in paced chunks and "
           "timed until the last answers, then closed-loop runs alternating between one host and a random one of "
           "all routes on the same router (x of 1 route: the median ratio of neighbouring runs), then one whole GET "
           "/routes (streamed) while the router's RSS was sampled.", "",
           "| measure | value |", "|---|---|",
           f"| 1 route, before loading: req/s, CPU us/req, RSS MiB | {_n(m.get('baseline_rps'))}, "
           f"{_n(m.get('baseline_cpu_us'), 1)}, {mib(m.get('rss_kb_one_route'))} |",
           f"| applied (first publish -> last route answers) | {_n(m.get('applied_s'), 2)} s "
           f"({_n(m.get('applied_msgs_per_s'))} routes/s) |",
           f"| RSS applied, bytes per route | {mib(m.get('rss_kb_applied'))} MiB, {_n(m.get('bytes_per_route'))} B |",
           f"| sampled routes not answering 200 | {m.get('sample_failures', 0)} |",
           f"| {m['routes']:,} routes: req/s, x of 1 route, p99 ms, CPU us/req | {_n(m.get('rps'))}, "
           f"{_n(m.get('ratio_to_1'), 2)}x, {_n(m.get('p99_ms'), 2)}, {_n(m.get('cpu_us_per_req'), 1)} |",
           f"| 1 route, alternating with those runs: req/s, CPU us/req; ratio of each pair | "
           f"{_n(m.get('one_route_rps'))}, {_n(m.get('one_route_cpu_us'), 1)}; "
           f"{', '.join(f'{r:.2f}' for r in m.get('pair_ratios') or []) or '-'} |",
           f"| RSS after the load | {mib(m.get('rss_kb_after_load'))} MiB |",
           f"| GET /routes | {m.get('routes_status')}: {m.get('routes_listed', 0):,} routes, "
           f"{m.get('routes_bytes', 0) / 1e6:.0f} MB in {_n(m.get('routes_s'), 2)} s, first byte after "
           f"{_n(m.get('routes_first_byte_s'), 3)} s |",
           f"| router RSS peak while /routes streamed | {mib(m.get('routes_rss_peak_kb'))} MiB |"]
    out += [f"| note | {note} |" for note in m.get("notes", [])]
    out.append("")
    return out
