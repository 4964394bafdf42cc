"""Did training improve the RL return, or only the validation score? A trained policy against its prior.

Replays episodes drawn from the training distribution (``RayServeClusterEnv``
with ``randomize=True``, seeds 90000+, never used in training) twice: with the
trained network (deterministic) and with its untrained prior (every pool kept
at its initial headroom level, each at its best batch size), under the reward
weights of the policy's model card. Prints per episode and in total the return
and its cost and SLO terms.

A policy whose return is worse than its prior's on its own training
distribution was selected by the validation score for something the reward
does not pay for (or PPO did not improve the return at all).

    .venv/bin/python bench/return_vs_prior.py --policy policies/NAME.zip [--episodes 8]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from autotune.rl import features as F
from autotune.rl.env import RayServeClusterEnv
from autotune.rl.policy import card_path, load_policy
from autotune.scenario import load_scenario

SEED_BASE = 90_000


def prior_action(ctx: F.FeatureContext) -> list[int]:
    """Keep every level (level kinds) at each pool's best batch size: the untrained network's choice."""
    if ctx.action_kind not in F.LEVEL_KINDS:
        raise SystemExit("return_vs_prior: only policies with a level action kind (moves, fill) have a fixed prior")
    out: list[int] = []
    for i in range(len(ctx.pools)):
        out += [F.MOVES.index(0), int(np.argmax(ctx.capacity[i]))]
    return out


def episode(env: RayServeClusterEnv, seed: int, act: object) -> dict[str, float | str]:
    obs, _ = env.reset(seed=seed)
    tot = {"return": 0.0, "cost_term": 0.0, "slo_term": 0.0}
    done = False
    while not done:
        a = act(obs, env)  # type: ignore[operator]
        obs, r, term, trunc, info = env.step(a)
        tot["return"] += r
        tot["cost_term"] += info["cost_term"]
        tot["slo_term"] += info["slo_term"]
        done = term or trunc
    return {**tot, "episode": str(env.episode.label)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="trained policy zip (its card says scenario and reward)")
    ap.add_argument("--episodes", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    card = json.loads(card_path(Path(args.policy)).read_text())
    sc = load_scenario(card["scenario"])
    pol = load_policy(args.policy, sc)
    weights = {k: v for k, v in card["reward_weights"].items() if k != "slo_scale"}
    env = RayServeClusterEnv(sc, randomize=True, episode_s=card["hyperparameters"]["episode_s"],
                             reward_weights_override=weights, action_kind=pol.ctx.action_kind,
                             sizing=pol.ctx.sizing)
    prior = prior_action(pol.ctx)
    runs = {
        "trained": lambda obs, e: pol.model.predict(obs, deterministic=True, action_masks=e.action_masks())[0],
        "prior": lambda obs, e: prior,
    }
    totals: dict[str, list[dict[str, float | str]]] = {k: [] for k in runs}
    for k in range(args.episodes):
        row = {name: episode(env, SEED_BASE + k, act) for name, act in runs.items()}
        for name, r in row.items():
            totals[name].append(r)
        t, p = row["trained"], row["prior"]
        parts = [f"{n} {r['return']:9.0f} (cost {r['cost_term']:6.0f} slo {r['slo_term']:6.0f})" for n, r in
                 (("trained", t), ("prior", p))]
        print(f"{t['episode'][:44]:44s} " + "  ".join(parts))
    for name, rows in totals.items():
        print(f"{name}: mean return {np.mean([r['return'] for r in rows]):.1f}, cost term "
              f"{np.mean([r['cost_term'] for r in rows]):.1f}, SLO term {np.mean([r['slo_term'] for r in rows]):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
