"""Evaluate policies on fixed episodes with the what-if machinery (simulate + oracle).

Validation episodes (used during training to log progress and pick the best
checkpoint) use seeds ``VALIDATION_SEED_BASE``..., disjoint from both the
training seeds (>= 10,000) and the benchmark seeds (0..999, what
``autotune whatif --seed`` uses), so the benchmark stays unseen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autotune.policies.oracle import make_oracle
from autotune.policies.registry import make_policy, ray_tuned_path
from autotune.policies.types import Policy
from autotune.scenario import Scenario, WorkloadSpec
from autotune.sim.cluster import SimConfig
from autotune.sim.run import simulate
from autotune.workload.arrivals import Arrivals, build_arrivals

VALIDATION_SEED_BASE = 5_000


@dataclass(frozen=True)
class EvalEpisode:
    label: str
    arrivals: Arrivals
    seed: int


def validation_episodes(scenario: Scenario, n: int = 4, duration_s: float = 1800.0) -> list[EvalEpisode]:
    """The scenario's own workload plus other generators at other loads, on validation seeds."""
    out = []
    mixes = [(scenario.workload.generator or "daily", scenario.workload.mean_rate or 300.0),
             ("mmpp", 60.0), ("flash", 600.0), ("daily", 25.0), ("ramp", 150.0), ("poisson", 900.0)]
    for k in range(n):
        gen, rate = mixes[k % len(mixes)]
        params = dict(scenario.workload.params) if gen == scenario.workload.generator else {}
        if gen == "flash":
            params = {"spike_factor": 3.0, "ramp_s": 60.0}  # reachable: the default 6x in 10 s is not, for any policy
        if gen == "daily" and "period_s" not in params:
            params["period_s"] = 3600.0
        spec = WorkloadSpec(kind="synthetic", generator=gen, mean_rate=rate, duration_s=duration_s, params=params)
        seed = VALIDATION_SEED_BASE + k
        arr = build_arrivals(scenario.model_copy(update={"workload": spec}), seed)
        out.append(EvalEpisode(f"{gen}@{rate:g}", arr, seed))
    return out


def run_policy(scenario: Scenario, policy: Policy, ep: EvalEpisode) -> dict[str, float | int | str]:
    return simulate(scenario, ep.arrivals, policy, ep.seed).summary()


def run_oracle(scenario: Scenario, ep: EvalEpisode) -> dict[str, float | int | str]:
    oracle = make_oracle(scenario, ep.arrivals)
    return simulate(scenario, ep.arrivals, oracle, ep.seed, SimConfig(instant_start=True), first=oracle.first).summary()


def baseline_names(scenario: Scenario) -> list[str]:
    names = ["ray-default", "hpa"]
    if ray_tuned_path(scenario).exists():
        names.append("ray-tuned")
    return names


def score(cost: float, slo: float, ref_cost: float, target: float) -> float:
    """Lower is better: cost relative to a reference, plus a steep charge per point of SLO shortfall."""
    return cost / ref_cost + 100.0 * max(0.0, target - slo)


def aggregate(rows: list[dict[str, float | int | str]]) -> dict[str, float]:
    """Totals over episodes: summed cost, request-weighted SLO attainment."""
    n = sum(float(r["requests"]) for r in rows)
    on_time = sum(float(r["slo_attainment"]) * float(r["requests"]) for r in rows
                  if not math.isnan(float(r["slo_attainment"])))
    return {"cost_usd": float(sum(float(r["cost_usd"]) for r in rows)),
            "slo_attainment": on_time / n if n else math.nan,
            "min_episode_slo": float(np.nanmin([float(r["slo_attainment"]) for r in rows])),
            "scale_actions": float(sum(float(r["scale_actions"]) for r in rows))}


def comparison_table(scenario: Scenario, policy: Policy | None, episodes: list[EvalEpisode],
                     baselines: list[str] | None = None) -> list[dict[str, float | str]]:
    """One row per policy (the RL policy, baselines, oracle) aggregated over ``episodes``."""
    pols: list[tuple[str, Policy | None]] = [(b, make_policy(b, scenario)) for b in
                                             (baseline_names(scenario) if baselines is None else baselines)]
    if policy is not None:
        pols.insert(0, (policy.name, policy))
    rows = []
    for name, pol in pols:
        assert pol is not None
        agg = aggregate([run_policy(scenario, pol, ep) for ep in episodes])
        rows.append({"policy": name, **agg})
    rows.append({"policy": "oracle", **aggregate([run_oracle(scenario, ep) for ep in episodes])})
    return rows
