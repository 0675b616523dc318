"""`reliability/run [--quick] [--only NAME ...] [--output FILE]`: run the scenarios, write RELIABILITY.md."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from reliability.core import Outcome, load_all
from reliability.report import load_previous, machine, outcome_from_dict, render, versions

ROOT = Path(__file__).resolve().parents[1]


def run_one(name: str, quick: bool) -> Outcome:
    sc = load_all()[name]
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.monotonic()
    try:
        result = sc.run(quick)
        return Outcome(sc.name, sc.goal, quick, time.monotonic() - t0, started, result=result)
    except Exception:
        return Outcome(sc.name, sc.goal, quick, time.monotonic() - t0, started, error=traceback.format_exc())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reliability/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short version of each scenario")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these scenarios (keeps the others' "
                        "earlier figures in the report)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and their goals, run nothing")
    parser.add_argument("--output", type=Path, default=ROOT / "RELIABILITY.md")
    parser.add_argument("--note", default="", help="a sentence put at the top of the report (e.g. the load)")
    args = parser.parse_args(argv)

    registry = load_all()
    if args.list:
        for sc in registry.values():
            print(f"{sc.name}: {sc.goal}")
        return 0
    names = list(registry)
    if args.only:
        unknown = [n for n in args.only if n not in registry]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(names)}")
        names = args.only
    outcomes = {n: outcome_from_dict(d) for n, d in load_previous(args.output).items()
                if args.only and n in registry and n not in names}
    header = {"Machine": machine(), "Versions": versions()}
    for name in names:
        print(f"[reliability] {name} ({'quick' if args.quick else 'full'}) ...", file=sys.stderr, flush=True)
        outcome = run_one(name, args.quick)
        outcomes[name] = outcome
        verdict = "error" if outcome.error else ("met" if outcome.met else "NOT MET")
        figures = outcome.result.figures if outcome.result else {}
        print(f"[reliability] {name}: {verdict} in {outcome.seconds:.1f}s {figures}", file=sys.stderr, flush=True)
        if outcome.error:
            print(outcome.error, file=sys.stderr)
        # write after every scenario, so an interrupted run keeps what it measured
        header["Machine"]["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        ordered = {n: outcomes[n] for n in registry if n in outcomes}
        args.output.write_text(render(list(registry.values()), ordered, header, args.note))
    print(f"[reliability] wrote {args.output}", file=sys.stderr)
    return 0 if all(outcomes[n].met for n in names) else 1
