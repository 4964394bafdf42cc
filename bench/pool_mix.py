"""Share of replica-time per pool, cost and SLO of policies on a scenario's own workload (one seed), plus the oracle.

The instance-mix figures in the README and docs/rl.md:

    .venv/bin/python bench/pool_mix.py --scenario mixed-large --policy policies/mixed-large.zip --policy predictive
"""

from __future__ import annotations

import argparse

from autotune.policies.oracle import make_oracle
from autotune.policies.registry import make_policy
from autotune.scenario import load_scenario
from autotune.sim.cluster import SimConfig
from autotune.sim.run import SimResult, simulate
from autotune.workload.arrivals import build_arrivals


def shares(res: SimResult) -> dict[str, float]:
    """Replica-time (pending, starting and running) per pool, as a fraction of the fleet's."""
    time = {p.name: 0.0 for p in res.scenario.pools}
    for w in res.windows:
        for name, c in w.replicas.items():
            time[name] += (c["running"] + c["starting"] + c["pending"]) * (w.t1 - w.t0)
    total = sum(time.values()) or 1.0
    return {k: v / total for k, v in time.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="mixed-large")
    ap.add_argument("--policy", action="append", default=[], help="policy name or zip (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sc = load_scenario(args.scenario)
    arr = build_arrivals(sc, args.seed)
    runs = [(spec, simulate(sc, arr, make_policy(spec, sc), args.seed)) for spec in args.policy]
    oracle = make_oracle(sc, arr)
    runs.append(("oracle", simulate(sc, arr, oracle, args.seed, SimConfig(instant_start=True), first=oracle.first)))
    for name, res in runs:
        s = res.summary()
        mix = ", ".join(f"{k} {v:.0%}" for k, v in shares(res).items())
        print(f"{name:<28} ${s['cost_usd']:.2f} at {s['slo_attainment']:.2%}  replica-time: {mix}")


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    main()
