"""``hpa``: the Kubernetes Horizontal Pod Autoscaler rule on ongoing requests per replica.

From ``pkg/controller/podautoscaler`` (replica_calculator.go, horizontal.go):
desired = ceil(ready * metric / target), unchanged within a 0.1 tolerance;
scale-down takes the highest recommendation of the last 300 s (stabilization
window); scale-up is limited to max(+100%, +4 pods) per step (the default
``behavior``); missing metrics never cause a scale-down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autotune.core.types import Decision, Observation, PolicyState
from autotune.scenario import PoolSpec

TOLERANCE = 0.1
DOWNSCALE_STABILIZATION_S = 300.0


def hpa_recommend(metric_per_replica: float, target: float, ready: int, current: int) -> int:
    """The raw replica calculation, before stabilization and rate limits."""
    if ready == 0:
        return current
    ratio = metric_per_replica / target
    if abs(ratio - 1.0) <= TOLERANCE:
        return current
    return math.ceil(ratio * ready)


def stabilize_down(recs: list[tuple[float, int]], now: float, rec: int) -> tuple[int, list[tuple[float, int]]]:
    kept = [(t, r) for t, r in recs if now - t < DOWNSCALE_STABILIZATION_S] + [(now, rec)]
    return max(r for _, r in kept), kept


def limit_up(desired: int, current: int) -> int:
    return min(desired, max(2 * current, current + 4))


@dataclass(frozen=True)
class HPAPolicy:
    pools: tuple[PoolSpec, ...]
    target_per_replica: float
    name: str = "hpa"
    # The Kubernetes HPA acts without autotune's guards (its own rate limits are in the rule).
    guarded: bool = False

    def initial_state(self) -> PolicyState:
        return {"recs": {p.name: [] for p in self.pools}}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        replicas: dict[str, int] = {}
        reasons: list[str] = []
        recs_state = {}
        for spec in self.pools:
            p = obs.pool(spec.name)
            current = p.target
            metric = p.total_requests / p.running if p.running else math.nan
            if not math.isfinite(metric):
                rec = current
                why = "no metric: hold (never scale down blind)"
            else:
                rec = hpa_recommend(metric, self.target_per_replica, p.running, current)
                why = f"{metric:.2f} per replica vs target {self.target_per_replica:g}"
            stable, recs_state[spec.name] = stabilize_down(list(state["recs"].get(spec.name, [])), obs.time_s, rec)
            desired = limit_up(stable, current) if stable > current else stable
            if stable > rec:
                why += f"; held at {stable} by the {DOWNSCALE_STABILIZATION_S:.0f}s stabilization window"
            if desired < stable:
                why += f"; scale-up limited to {desired}"
            replicas[spec.name] = max(spec.min_replicas, min(spec.max_replicas, desired))
            reasons.append(f"{spec.name}: {why}")
        return Decision(replicas, "; ".join(reasons)), {"recs": recs_state}
