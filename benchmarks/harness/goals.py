"""Issue 13's hot-path goals from one run: Portico (compiled, and pure Python beside it) against nginx.

Goals: throughput >= 0.8x nginx at 50 connections, one worker, access log on, gorouter's default headers;
CPU per request <= 1.25x nginx's; an open-loop run at half of nginx's peak sustained with p99 <= 2 ms. Every
figure is a ratio inside the same run (an absolute figure means nothing across machines). Workers 1 -> 2 are
reported in their own table (workers.py), with how they were pinned.
"""

from __future__ import annotations

from .load import FOREIGN_LIMIT
from .steal import STEAL_LIMIT

GOAL_CONNECTIONS = 50
COMPILED = "portico"
PURE = "portico (pure)"
PORTICO_TARGETS = (COMPILED, PURE)


def _at(closed: list[dict], target: str, connections: int) -> dict | None:
    return next((r for r in closed if r["target"] == target and r["connections"] == connections and r.get("rps")),
                None)


def _open_half(open_runs: list[dict], target: str) -> dict | None:
    return next((r for r in open_runs if r["target"] == target and abs(r.get("fraction", 0) - 0.5) < 1e-6), None)


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _label(res: dict, target: str) -> str:
    """`portico` is whatever the build gave: say which implementation actually ran (from its /varz)."""
    implementation = (res.get("implementations") or {}).get(target) or {}
    kind = implementation.get("implementation")
    if target == COMPILED and kind == "pure":
        return f"{target} (pure: nothing compiled - {implementation.get('reason', '')})"
    return target


def hot_path_targets(res: dict) -> list[dict]:
    """The goal rows for the Targets table (same shape as report.evaluate_targets' rows)."""
    closed, rows = res.get("closed", []), []
    nginx = _at(closed, "nginx", GOAL_CONNECTIONS)
    portico = _at(closed, COMPILED, GOAL_CONNECTIONS)
    who = _label(res, COMPILED)

    def row(name: str, goal: str, value: str, met: bool | None) -> None:
        rows.append({"name": name, "goal": goal, "value": value, "met": met, "gorouter": ""})

    name = f"Throughput vs nginx ({GOAL_CONNECTIONS} connections, 1 worker, access log on)"
    if nginx and portico:
        ratio = portico["rps"] / nginx["rps"]
        row(name, ">= 0.80x nginx", f"{ratio:.2f}x ({who} {_num(portico['rps'])} vs nginx {_num(nginx['rps'])} "
            "req/s)", ratio >= 0.8)
    else:
        row(name, ">= 0.80x nginx", "not measured", None)
    name = f"CPU per request vs nginx ({GOAL_CONNECTIONS} connections)"
    if nginx and portico and nginx.get("cpu_us_per_req") and portico.get("cpu_us_per_req") is not None:
        ratio = portico["cpu_us_per_req"] / nginx["cpu_us_per_req"]
        row(name, "<= 1.25x nginx", f"{ratio:.2f}x ({portico['cpu_us_per_req']:.1f} vs "
            f"{nginx['cpu_us_per_req']:.1f} us)", ratio <= 1.25)
    else:
        row(name, "<= 1.25x nginx", "not measured", None)
    half = _open_half(res.get("open", []), COMPILED)
    name = "Open loop at half of nginx's peak: sustained, p99"
    if half:
        value = f"p99 {_num(half['p99_ms'], 2)} ms at {_num(half['rate'])} req/s"
        if not half["sustained"]:
            value += f" (not sustained: {_num(half['achieved_rps'])} req/s, {half['errors']} errors)"
        met = bool(half["sustained"] and half["p99_ms"] is not None and half["p99_ms"] <= 2.0)
        value += _steal_note(half, _open_half(res.get("open", []), "nginx"))
        row(name, "sustained, p99 <= 2 ms", value, met)
    else:
        row(name, "sustained, p99 <= 2 ms", "not measured", None)
    return rows


def _steal_note(run: dict, nginx: dict | None) -> str:
    """The host's share in a tail figure: steal on the proxy's CPU and other processes' cores during the run,
    and nginx's p99 at the same rate."""
    steal, foreign = run.get("steal"), run.get("foreign_cpu_util")
    if steal is None and foreign is None:
        return ""
    note = f"; steal on the proxy's CPU {_share(steal)}, foreign {_num(foreign, 2)} cores"
    if (steal or 0.0) > STEAL_LIMIT or (foreign or 0.0) > FOREIGN_LIMIT:
        note += (f" in the least disturbed of {len(run.get('tries') or [1])} tries: the host's stalls are in "
                 "this p99")
    if nginx and nginx.get("p99_ms") is not None:
        note += f"; nginx at the same rate: p99 {_num(nginx['p99_ms'], 2)} ms"
        if nginx.get("steal") is not None:
            note += f", steal {_share(nginx['steal'])}"
    return note


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def hot_path_section(res: dict) -> list[str]:
    """Markdown: nginx, compiled and pure Portico side by side at the goal's connection count."""
    closed = res.get("closed", [])
    nginx = _at(closed, "nginx", GOAL_CONNECTIONS)
    rows = [(t, _at(closed, t, GOAL_CONNECTIONS)) for t in ("nginx", *PORTICO_TARGETS)]
    if not any(r for t, r in rows if t != "nginx"):
        return []
    out = ["## Compiled hot path (issue 13): nginx, compiled Portico, pure-Python Portico", "",
           f"Closed loop at {GOAL_CONNECTIONS} connections, one worker each, in this run. `portico (pure)` is the "
           "same router started with PORTICO_PURE_PYTHON=1. The implementation column is what each router's "
           "/varz said.", "",
           "| proxy | implementation | req/s | x nginx | CPU us/req | x nginx CPU | p99 ms | open loop p99 at 0.5x |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    implementations = res.get("implementations") or {}
    for target, r in rows:
        if not r:
            continue
        kind = "-" if target == "nginx" else _implementation_text(implementations.get(target))
        x_rps = f"{r['rps'] / nginx['rps']:.2f}x" if nginx else "-"
        cpu = r.get("cpu_us_per_req")
        x_cpu = f"{cpu / nginx['cpu_us_per_req']:.2f}x" if nginx and cpu and nginx.get("cpu_us_per_req") else "-"
        half = _open_half(res.get("open", []), target)
        open_p99 = "-" if not half else (f"{_num(half['p99_ms'], 2)} ms" +
                                         ("" if half["sustained"] else " (not sustained)"))
        out.append(f"| {target} | {kind} | {_num(r['rps'])} | {x_rps} | {_num(cpu, 1)} | {x_cpu} | "
                   f"{_num(r.get('p99_ms'), 2)} | {open_p99} |")
    compiled, pure = _at(closed, COMPILED, GOAL_CONNECTIONS), _at(closed, PURE, GOAL_CONNECTIONS)
    if compiled and pure and pure.get("cpu_us_per_req") and compiled.get("cpu_us_per_req"):
        out += ["", f"Compiled against pure: {compiled['rps'] / pure['rps']:.2f}x the requests/s, "
                f"{compiled['cpu_us_per_req'] / pure['cpu_us_per_req']:.2f}x the CPU per request."]
    out.append("")
    return out


def _implementation_text(implementation: dict | None) -> str:
    if not implementation:
        return "not reported"
    if implementation.get("implementation") == "compiled":
        return f"compiled ({len(implementation.get('compiled_modules') or [])} modules)"
    return "pure Python"
