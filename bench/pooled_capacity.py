"""How much a fleet spread over several pools carries within the SLO: measured, and as the capacity model predicts.

The router balances across every replica of the deployment, whatever its pool,
so n replicas of one GPU split over two pools pool like one fleet of n; across
GPU types it depends on their queue limits. This measures the
highest Poisson rate each fleet keeps ``slo.target`` within ``slo.latency_ms``
(bisection on 60 s probes, as :mod:`autotune.capacity` measures one pool) and
prints it beside two models: the sum of each pool's fleet taken alone, and the
model the rules and the oracle size with (:func:`autotune.capacity.pooled_capacity`),
which pools the replicas of pools on the same GPU as one fleet and sums across GPUs.

    .venv/bin/python bench/pooled_capacity.py --scenario mixed-large
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from autotune.capacity import measured_capacity, pooled_capacity
from autotune.policies.headroom import make_headroom
from autotune.scenario import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="mixed-large")
    ap.add_argument("--max-per-pool", type=int, default=4)
    args = ap.parse_args()
    sc = load_scenario(args.scenario)
    rule = make_headroom(sc)
    names = list(rule.order)
    ranges = [range(0, min(args.max_per_pool, rule.max_replicas[n]) + 1) for n in names]
    print(f"{'fleet':<36} {'measured':>9} {'alone-sum':>10} {'model':>8}  err alone / model")
    errs: dict[str, list[float]] = {"alone": [], "model": []}
    for combo in itertools.product(*ranges):
        if sum(1 for c in combo if c) < 2:
            continue  # one pool alone is what autotune.capacity measures directly
        fleet = {**{p.name: 0 for p in sc.runtime_pools()}, **dict(zip(names, combo, strict=True))}
        alone = sum(rule.totals[n][fleet[n]] for n in names)
        pooled = pooled_capacity(fleet, rule.totals, rule.groups)
        got = measured_capacity(sc, fleet, rule.batch, hi=2.0 * max(alone, pooled))
        ea, ep = alone / got - 1.0, pooled / got - 1.0
        errs["alone"].append(ea)
        errs["model"].append(ep)
        label = " ".join(f"{n}={fleet[n]}" for n in names)
        print(f"{label:<36} {got:9.1f} {alone:10.1f} {pooled:8.1f}  {ea:+6.1%} / {ep:+6.1%}")
    for k, v in errs.items():
        a = np.abs(np.asarray(v))
        print(f"{k}: mean |error| {a.mean():.1%}, worst {np.asarray(v)[a.argmax()]:+.1%}, "
              f"over-estimates in {sum(1 for e in v if e > 0.01)}/{len(v)}")


if __name__ == "__main__":
    main()
