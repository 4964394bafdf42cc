"""What does the reward prefer? Fixed actions on training-distribution episodes, no learning.

Replays episodes drawn as in training (``RayServeClusterEnv(randomize=True)``,
seeds 90000+, never used in training) under three fixed ``fill`` actions and
prints each one's return with its cost and SLO terms:

- ``prior``: every level kept, i.e. the untrained policy (with ``--sizing
  predictive``, the ``predictive`` rule);
- ``no-<pool>``: the same, but the named pool moved down to level 0 (its minimum);
- ``all-down``: every pool moved down every window.

If ``no-<pool>`` returns more than ``prior``, PPO is paid to drop that pool
whatever the SLO says (``mixed-large``'s A100 under the 29 Nov reward: docs/rl.md).

    .venv/bin/python bench/reward_probe.py --scenario mixed-large --drop a100 [--episodes 8] [--set slo_weight=2]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from return_vs_prior import SEED_BASE, episode, prior_action  # type: ignore[import-not-found]  # bench/ is on the path

from autotune.rl import features as F
from autotune.rl.env import RayServeClusterEnv
from autotune.scenario import load_scenario


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="mixed-large", help="scenario name or path")
    ap.add_argument("--drop", default="a100", help="the pool the no-<pool> run drops")
    ap.add_argument("--sizing", default="predictive", choices=F.SIZINGS)
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--episode-s", type=float, default=1800.0)
    ap.add_argument("--set", action="append", default=[], metavar="WEIGHT=VALUE", help="a reward weight")
    args = ap.parse_args()
    weights = {k: float(v) for k, _, v in (s.partition("=") for s in args.set)}
    env = RayServeClusterEnv(load_scenario(args.scenario), randomize=True, episode_s=args.episode_s,
                             reward_weights_override=weights or None, action_kind="fill", sizing=args.sizing)
    ctx = env.ctx
    prior = prior_action(ctx)
    drop = list(prior)
    drop[2 * ctx.pools.index(args.drop)] = F.MOVES.index(min(F.MOVES))
    down = list(prior)
    for i in range(len(ctx.pools)):
        down[2 * i] = F.MOVES.index(min(F.MOVES))
    runs = {"prior": prior, f"no-{args.drop}": drop, "all-down": down}
    returns: dict[str, list[float]] = {k: [] for k in runs}
    for k in range(args.episodes):
        row = {name: episode(env, SEED_BASE + k, lambda obs, e, a=a: a) for name, a in runs.items()}
        cells = [f"{n} {r['return']:8.0f} (cost {r['cost_term']:5.0f} slo {r['slo_term']:5.0f})"
                 for n, r in row.items()]
        print(f"{str(row['prior']['episode'])[:40]:40s} " + "  ".join(cells), flush=True)
        for name, r in row.items():
            returns[name].append(float(r["return"]))
    print("mean return: " + ", ".join(f"{n} {np.mean(v):.1f}" for n, v in returns.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
