"""``predictive`` with one start-up lead for every pool against a lead per pool, where a pool starts faster.

A warm node pool starts faster than the cheapest pool. This is what sizing it
for its own, shorter lead saves (``make_predictive`` does so by default;
``per_pool_lead=False`` is the single-lead rule, the RL ``fill`` prior), with
``oracle-startup`` beside it. The figures in docs/rl.md, session 6:

    .venv/bin/python bench/pool_lead.py --scenario mixed-large --provision a100=60 \\
        --case own-seed0 --case own-seed1 --case own-seed2 --case poisson@300-seed0 --case mmpp@300-seed0 \\
        --case flash@30-seed0 --case ramp@300-seed0 --case nasa-day0@100
"""

from __future__ import annotations

import argparse
import sys

from rl_eval import cases

from autotune.errors import InputError
from autotune.policies.oracle import make_oracle
from autotune.policies.predictive import make_predictive
from autotune.scenario import Scenario, load_scenario
from autotune.sim.run import simulate
from autotune.workload.arrivals import build_arrivals


def with_provision(sc: Scenario, pairs: list[str]) -> Scenario:
    """``sc`` with node provisioning set per pool (``POOL=SECONDS``), as a warm node pool would have it."""
    seconds = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in {p.name for p in sc.pools} or not value.replace(".", "", 1).isdigit():
            raise InputError("command line", "--provision", f"expected POOL=SECONDS for a pool of {sc.name}, "
                                                            f"got {pair!r}")
        seconds[name] = float(value)
    return sc.model_copy(update={"pools": [p.model_copy(update={"provision_s": seconds[p.name]})
                                           if p.name in seconds else p for p in sc.pools]})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="mixed-large")
    ap.add_argument("--provision", action="append", default=[], metavar="POOL=SECONDS")
    ap.add_argument("--case", action="append", default=[], help="rl_eval case name (repeatable; default: all)")
    args = ap.parse_args(argv)
    sc = with_provision(load_scenario(args.scenario), args.provision)
    rule = make_predictive(sc)
    leads = rule.pool_leads or (rule.lead_windows,) * len(rule.rule.order)
    print(f"{sc.name}: leads {dict(zip(rule.rule.order, leads, strict=True))} windows")
    total = {"one lead": 0.0, "per pool": 0.0}
    for case in cases(sc, False):
        if args.case and case.name not in args.case:
            continue
        arr = build_arrivals(case.scenario, case.seed, case.options)
        one = simulate(case.scenario, arr, make_predictive(case.scenario, per_pool_lead=False), case.seed).summary()
        own = simulate(case.scenario, arr, make_predictive(case.scenario), case.seed).summary()
        early = simulate(case.scenario, arr, make_oracle(case.scenario, arr, start_up=True), case.seed).summary()
        total["one lead"] += float(one["cost_usd"])
        total["per pool"] += float(own["cost_usd"])
        print(f"{case.name:>18}  one lead ${one['cost_usd']:.2f} {one['slo_attainment']:.2%}  "
              f"per pool ${own['cost_usd']:.2f} {own['slo_attainment']:.2%} "
              f"({own['cost_usd'] / one['cost_usd'] - 1:+.1%})  oracle-startup ${early['cost_usd']:.2f}", flush=True)
    print(f"total: one lead ${total['one lead']:.2f}, per pool ${total['per pool']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
