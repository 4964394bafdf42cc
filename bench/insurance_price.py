"""What insurance against a surprise costs, in hindsight, and what a policy pays beyond it.

The issue's 1.15x is against ``oracle``, which knows when a flash crowd comes.
A policy that does not must hold, at every moment, a fleet that absorbs the
surge it is asked to survive (``bench/causal_bound.py``). ``oracle+crowd:K``
(``make_oracle(..., insure=K)``) is the clairvoyant plan that also never holds
less than ``POLICY+crowd:K``'s floor: the fleet that carries K x the calm load
(the median window rate of the last 10 minutes), starting replicas instantly.
Over the ``bench/rl_eval.py`` cases where the oracle keeps the SLO:

    policy / oracle = (oracle+crowd:K / oracle) x (policy / oracle+crowd:K)
                       price of the insurance     price of the rest

The plan is a reference, not a strict bound: a policy that misses a window's
peak may pay less than it; one that holds the floor and keeps every peak pays
at least it. ``oracle-startup+crowd:K`` is the same plan asked for ahead of the
pools' start-up delays, from the initial fleet (it starts floor replicas before
the calm load has risen, which no causal floor does, so a causal policy can
also land below it).

    .venv/bin/python bench/insurance_price.py --scenario default --policy predictive+crowd:3 \\
        --policy policies/default.zip [--crowd 3]

writes ``bench/results/insurance_price-<scenario>.csv`` / ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from rl_eval import Case
from startup_price import cells, priced_rows, save

from autotune.paths import ROOT
from autotune.policies.crowd import CROWD_DEFAULT
from autotune.policies.oracle import make_oracle
from autotune.scenario import load_scenario
from autotune.sim.cluster import SimConfig
from autotune.sim.run import simulate
from autotune.whatif import WhatIf

TARGET_RATIO = 1.15  # the "within 1.15x of oracle", here read against the insured plan


def summarize(rows: list[dict[str, float | str]], keys: list[str], insured: str, target: float) -> dict[str, float]:
    reach = [r for r in rows if float(r["oracle_slo"]) >= target]

    def tot(k: str) -> float:
        return float(sum(float(r[f"{k}_cost"]) for r in reach))

    s: dict[str, float] = {"cases": len(rows), "oracle_reachable_cases": len(reach),
                           f"{insured}_vs_oracle": tot(insured) / tot("oracle"),
                           f"{insured}_keeps_slo_where_reachable": sum(float(r[f"{insured}_slo"]) >= target
                                                                       for r in reach),
                           "oracle-startup_vs_oracle": tot("oracle-startup") / tot("oracle"),
                           f"early_{insured}_vs_oracle": tot(f"early_{insured}") / tot("oracle")}
    for k in keys:
        s[f"{k}_vs_oracle"] = tot(k) / tot("oracle")
        s[f"{k}_vs_{insured}"] = tot(k) / tot(insured)
        s[f"{k}_vs_early_{insured}"] = tot(k) / tot(f"early_{insured}")
        s[f"{k}_meets_slo_where_reachable"] = sum(float(r[f"{k}_slo"]) >= target for r in reach)
        s[f"{k}_meets_slo_after_warmup_where_reachable"] = sum(float(r[f"{k}_slo_warm"]) >= target for r in reach)
        s[f"{k}_cases_within_{TARGET_RATIO:g}x_{insured}"] = sum(
            float(r[f"{k}_cost"]) <= TARGET_RATIO * float(r[f"{insured}_cost"]) for r in reach)
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--policy", action="append", default=[], help="policy name or zip (repeatable)")
    ap.add_argument("--crowd", type=float, default=CROWD_DEFAULT, help="the surge K the insured plan holds")
    ap.add_argument("--quick", action="store_true", help="fewer cases")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sc = load_scenario(args.scenario)
    insured = f"oracle+crowd:{args.crowd:g}"

    def plans(case: Case, res: WhatIf) -> dict[str, float]:
        arr = res.arrivals
        plan = make_oracle(case.scenario, arr, insure=args.crowd)
        row = cells(insured, simulate(case.scenario, arr, plan, case.seed, SimConfig(instant_start=True)))
        early = make_oracle(case.scenario, arr, start_up=True, insure=args.crowd)
        return row | cells(f"early_{insured}", simulate(case.scenario, arr, early, case.seed))

    t0 = time.monotonic()
    rows = priced_rows(sc, args.policy, args.quick, plans, ["oracle", insured, *args.policy])
    summary = summarize(rows, args.policy, insured, sc.slo.target)
    summary["wall_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(summary, indent=2))
    save(args.out, f"insurance_price-{sc.name}{'-quick' if args.quick else ''}", rows,
         {"scenario": sc.name, "policies": args.policy, "crowd": args.crowd, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
