"""The price breakdown: what start-up delay, insurance against a K x surge, and each policy's own decisions cost.

Over the held-out cases where the oracle keeps the SLO (autotune/benchmark/price.py says how):

    oracle-startup / oracle      the price of start-up delays, whatever the forecast
    oracle+crowd:K / oracle      the price of insurance against a K x surge, in hindsight
    policy / plan                what a policy pays beyond the plan it holds what it holds with

It reads the held-out benchmark's results (run bench/heldout.py first) and simulates the insured plan on each
case's arrivals:

    .venv/bin/python bench/price_breakdown.py --scenario default [--crowd 3]

writes ``bench/results/price_breakdown-<scenario>.csv`` (the summary) and ``.json`` (with the insured plans
per case).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # two shared cores: one per process

from autotune.benchmark.cases import Case, cases  # noqa: E402
from autotune.benchmark.price import Row, run_price, write  # noqa: E402
from autotune.benchmark.results import RESULTS, MissingResult, load_heldout_summary, read_heldout_rows  # noqa: E402
from autotune.cli_common import console, out  # noqa: E402
from autotune.errors import InputError  # noqa: E402
from autotune.scenario import load_scenario  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--crowd", type=float, action="append", metavar="K",
                    help="also price insurance against a K x surge (repeatable; the Ks the policies hold always)")
    ap.add_argument("--duration", type=float, help="the cases' first S seconds, as the held-out run was cut")
    ap.add_argument("--results", help=f"folder of the held-out results, and of these (default {RESULTS})")
    args = ap.parse_args(argv)
    folder = Path(args.results) if args.results else RESULTS
    try:
        sc = load_scenario(args.scenario)
        if args.crowd and not all(1 <= k <= 100 for k in args.crowd):
            raise InputError("command line", "--crowd", "K must be from 1 to 100")
        held = load_heldout_summary(sc.name, folder=folder)
        rows = read_heldout_rows(sc.name, folder=folder)
        todo = cases(sc)
        if args.duration is not None:
            todo = [c.cut(args.duration) for c in todo]
        n = len({r["case"] for r in rows})
        console.print(f"[bold]{sc.name}[/]: the insured plan on {n} cases")

        def show(case: Case, got: list[Row]) -> None:
            console.print(f"{case.name:>18}  " + "  ".join(f"{r['policy']} ${r['cost_usd']:.2f} "
                                                           f"{r['slo_attainment']:.2%}" for r in got),
                          highlight=False)

        result = run_price(sc, rows, todo, held["policies"], args.crowd or (), on_case=show)
    except (InputError, MissingResult) as e:
        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 2
    result.heldout_command = held.get("command", "")
    result.command = shlex.join([".venv/bin/python", "bench/price_breakdown.py",
                                 *(sys.argv[1:] if argv is None else argv)])
    csv_path, json_path = write(result, folder)
    out.print(f"{sc.name}: over the {result.summary[0]['cases']} cases where the oracle keeps the "
              f"{sc.slo.target:.1%} target ({result.wall_s:.0f} s)", highlight=False)
    for r in result.summary:
        split = "" if r["kind"] == "plan" else f" = {r['plan_vs_oracle']:.2f}x ({r['compared_with']}) x " \
                                               f"{r['vs_plan']:.2f}x"
        out.print(f"{r['name']:>28}: {r['vs_oracle']:.2f}x oracle{split}; kept {r['kept']}/{r['cases']}",
                  highlight=False)
    console.print(f"wrote {csv_path} and {json_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
