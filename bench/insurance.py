"""Where insurance is held: the price of a K x surge floor with and without the scenario's spot pool.

``POLICY+crowd:K`` fills its floor cheapest pool first, by dollars per request per second within the SLO
(``headroom``'s order), so on a scenario with spot capacity the standing fleet lands on spot, preemptions
and all (the simulator preempts it at the pool's rate). This runs each crowd case of the held-out benchmark
twice, on the scenario as it is and with its spot pools removed, under the inner policy alone and with the
floor, and reports what the floor adds:

    .venv/bin/python bench/insurance.py --scenario mixed [--crowd 3]

writes ``bench/results/insurance-<scenario>.csv`` (a row per case x pools x policy) and ``.json`` (the
summary: the floor's added cost on each pool set, and the SLO it keeps).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from autotune.benchmark.cases import cases  # noqa: E402
from autotune.benchmark.results import RESULTS, write_result  # noqa: E402
from autotune.cli_common import console, out  # noqa: E402
from autotune.errors import InputError  # noqa: E402
from autotune.registry import make_policy  # noqa: E402
from autotune.scenario import Scenario, load_scenario  # noqa: E402
from autotune.sim.capacity import measure_capacity  # noqa: E402
from autotune.sim.run import simulate  # noqa: E402

COLUMNS = ("case", "pools", "policy", "requests", "slo_attainment", "cost_usd")
CROWD_FAMILIES = ("synthetic-crowds", "worldcup-crowds")


def without_spot(sc: Scenario) -> Scenario:
    pools = [p for p in sc.pools if not p.spot]
    if len(pools) == len(sc.pools):
        raise InputError(sc.name, "pools", "has no spot pool to compare with")
    return sc.model_copy(update={"pools": pools})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="mixed")
    ap.add_argument("--inner", default="predictive", help="the policy under the floor")
    ap.add_argument("--crowd", type=float, default=3.0, metavar="K")
    args = ap.parse_args(argv)
    try:
        sc = load_scenario(args.scenario)
        without_spot(sc)
        todo = cases(sc, CROWD_FAMILIES)
    except InputError as e:
        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 2
    specs = (args.inner, f"{args.inner}+crowd:{args.crowd:g}")
    t0 = time.monotonic()
    rows: list[dict[str, object]] = []
    for case in todo:
        arr = case.arrivals()
        for label, s in (("all", case.scenario), ("no spot", without_spot(case.scenario))):
            capacity = measure_capacity(s)
            for spec in specs:
                r = simulate(s, arr, make_policy(spec, s, capacity), case.seed).summary()
                rows.append({"case": case.name, "pools": label, "policy": spec, "requests": int(r["requests"]),
                             "slo_attainment": float(r["slo_attainment"]), "cost_usd": float(r["cost_usd"])})
                console.print(f"{case.name:>32} {label:>8} {spec:>22} ${r['cost_usd']:7.2f} "
                              f"{r['slo_attainment']:.2%}", highlight=False)

    def total(pools: str, spec: str) -> float:
        return sum(float(r["cost_usd"]) for r in rows if r["pools"] == pools and r["policy"] == spec)

    def worst(pools: str, spec: str) -> float:
        return min(float(r["slo_attainment"]) for r in rows if r["pools"] == pools and r["policy"] == spec)

    summary = {pools: {"inner_cost_usd": total(pools, specs[0]), "floor_cost_usd": total(pools, specs[1]),
                       "insurance_usd": total(pools, specs[1]) - total(pools, specs[0]),
                       "worst_slo_inner": worst(pools, specs[0]), "worst_slo_floor": worst(pools, specs[1])}
               for pools in ("all", "no spot")}
    doc = {"scenario": sc.name, "inner": specs[0], "floor": specs[1], "cases": [c.name for c in todo],
           "summary": summary, "wall_s": round(time.monotonic() - t0, 1),
           "command": shlex.join([".venv/bin/python", "bench/insurance.py",
                                  *(sys.argv[1:] if argv is None else argv)])}
    csv_path, _ = write_result(RESULTS, f"insurance-{sc.name}", COLUMNS, rows, doc)
    a, b = summary["all"], summary["no spot"]
    out.print(f"{sc.name}, {len(todo)} crowd cases: {specs[1]} adds ${a['insurance_usd']:.2f} with spot, "
              f"${b['insurance_usd']:.2f} without ({a['insurance_usd'] / b['insurance_usd']:.2f}x); worst SLO "
              f"{a['worst_slo_floor']:.2%} with spot, {b['worst_slo_floor']:.2%} without", highlight=False)
    console.print(f"wrote {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
