"""How often does a policy keep the SLO on bursty load? Many MMPP episodes, not one.

The benchmark (``bench/rl_eval.py``) holds one MMPP hour per rate, and validation held one: a policy that
keeps both can still lose most bursty hours. This replays ``--episodes`` MMPP hours (3x bursts of about a
minute, calm spells of about four: the benchmark's shape) on seeds 5200 and up, which are neither benchmark
(0..999), validation (5000-5103) nor training (>= 10,000) seeds, and counts per policy the hours whose SLO
after the warm-up meets the target.

    .venv/bin/python bench/burst_scan.py --scenario default --policy policies/default.zip \\
        --policy predictive+crowd:3 [--rate 300 | --own] [--episodes 100] [--out bench/results]

prints one row per policy (hours kept, worst and 10th-percentile SLO, cost, cost against the first policy)
and writes ``burst_scan-<scenario>-mmpp@<rate>.csv`` with one row per hour and policy. ``--own`` replays the
scenario's own workload instead (on ``mixed``, an MMPP too), on the same seeds.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

from autotune.paths import ROOT
from autotune.policies.registry import make_policy
from autotune.rl.evaluation import MMPP_PARAMS, EvalEpisode, run_policy
from autotune.scenario import WorkloadSpec, load_scenario
from autotune.workload.arrivals import build_arrivals

SEED_BASE = 5200


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--policy", action="append", required=True, help="policy zip or rule name (repeatable)")
    ap.add_argument("--rate", type=float, default=300.0, help="mean req/s")
    ap.add_argument("--own", action="store_true", help="the scenario's own workload (its rate, its shape) instead")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sc = load_scenario(args.scenario)
    spec = WorkloadSpec(kind="synthetic", generator="mmpp", mean_rate=args.rate, duration_s=3600.0,
                        params=MMPP_PARAMS)
    variant = sc if args.own else sc.model_copy(update={"workload": spec})
    what = "own" if args.own else f"mmpp@{args.rate:g}"
    pols = [make_policy(p, variant) for p in args.policy]
    rows: list[dict[str, float | int | str]] = []
    t0 = time.monotonic()
    for k in range(args.episodes):
        seed = SEED_BASE + k
        ep = EvalEpisode(f"{what}#{seed}", build_arrivals(variant, seed), seed)
        for name, pol in zip(args.policy, pols, strict=True):
            r = run_policy(variant, pol, ep)
            rows.append({"policy": name, "seed": seed, "cost_usd": float(r["cost_usd"]),
                         "slo_after_warmup": float(r["slo_after_warmup"]), "slo": float(r["slo_attainment"])})
        if (k + 1) % 10 == 0:
            print(f"  {k + 1}/{args.episodes} hours ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    target = sc.slo.target
    first = sum(float(r["cost_usd"]) for r in rows if r["policy"] == args.policy[0])
    shape = variant.workload.model_dump(exclude_defaults=True)
    print(f"{sc.name}: {args.episodes} episodes of {shape}, SLO after the warm-up")
    print(f"{'policy':>32}  {'kept':>8}  {'worst':>7}  {'p10':>7}  {'cost':>9}  {'vs first':>8}")
    for name in args.policy:
        mine = [r for r in rows if r["policy"] == name]
        slo = np.array([float(r["slo_after_warmup"]) for r in mine])
        cost = sum(float(r["cost_usd"]) for r in mine)
        print(f"{name:>32}  {int((slo >= target).sum()):>4}/{len(mine):<3}  {slo.min():7.2%}  "
              f"{np.percentile(slo, 10):7.2%}  ${cost:8.2f}  {cost / first:7.3f}x")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"burst_scan-{sc.name}-{what}.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path} ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
