"""``headroom[:M]``: hold M times the replicas the load needs by SLO capacity, on the cheapest pool.

A target-tracking rule that knows what Ray's does not: per-replica capacity
*within the SLO* at each batch size and fleet size (:mod:`autotune.policies.sizing`)
and prices. Every window: forecast = max(last window's rate, mean of the last
three) (up within one window, down only once the lower rate has lasted); the
pool with the fewest dollars per req/s of SLO capacity runs the fewest replicas
whose SLO capacity covers M x forecast; what its ``max_replicas`` (a GPU quota) cannot hold spills to the next
cheapest pool, and so on, counting pools on the same GPU (spot and on-demand L4s) as one
pooled fleet (:func:`autotune.policies.sizing.pooled_capacity`); the other pools sit at their minimum; every pool
runs the batch size that gives it the most SLO capacity. The other rules (``burst``, ``predictive``, the crowd
floor) and the RL ``fill`` action size fleets with this rule's fill.
"""

from __future__ import annotations

from dataclasses import dataclass

from autotune.core.types import Decision, Observation, PolicyState
from autotune.policies.sizing import (
    Capacity,
    MixFn,
    capacity_table,
    fill_fleet,
    fleet_size_limit,
    gpu_groups,
    pooled_capacity,
)
from autotune.scenario import Scenario

DEFAULT_HEADROOM = 1.2
FORECAST_WINDOWS = 3


def forecast(rates: list[float]) -> float:
    """Load to size for: the larger of the last window's rate and the mean of the last three.

    Taking the max reacts to a rise within one window and scales down only once
    the lower rate has lasted a while, which is what start-up delays reward.
    """
    if not rates:
        return 0.0
    recent = rates[-FORECAST_WINDOWS:]
    return max(rates[-1], sum(recent) / len(recent))


@dataclass(frozen=True)
class HeadroomPolicy:
    order: tuple[str, ...]  # pools by dollars per req/s of SLO capacity, cheapest first (usable ones only)
    batch: dict[str, int]  # per pool, the batch size with the most SLO capacity
    # req/s n replicas carry within the SLO at that batch size, by n up to the quotas of all pools on its GPU
    totals: dict[str, tuple[float, ...]]
    min_replicas: dict[str, int]
    max_replicas: dict[str, int]
    groups: dict[str, str]  # pool -> GPU type: same-GPU pools pool as one fleet (sizing.pooled_capacity)
    headroom: float = DEFAULT_HEADROOM
    name: str = "headroom"
    mixed: MixFn | None = None  # what fleets that mix GPU types carry (Capacity.mixes)

    @property
    def pool(self) -> str:
        return self.order[0]

    def initial_state(self) -> PolicyState:
        return {"rates": []}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        rates = (list(state["rates"]) + [obs.arrival_rate])[-FORECAST_WINDOWS:]
        load = forecast(rates)
        return self.fleet(self.headroom * load, f"{self.headroom:g}x of {load:.0f} req/s"), {"rates": rates}

    def fleet(self, need: float, why: str) -> Decision:
        """Replicas holding ``need`` req/s of SLO capacity: cheapest pool first, spilling past quotas."""
        replicas = dict(self.min_replicas)
        replicas.update(fill_fleet([need] * len(self.order), self.order, self.totals, self.min_replicas,
                                   self.max_replicas, self.groups, self.mixed, self.batch))
        parts = [why]
        for name in self.order:
            if replicas[name] > self.min_replicas[name] or name == self.pool:
                parts.append(f"{name}: {replicas[name]} at batch {self.batch[name]}")
        have = pooled_capacity(replicas, self.totals, self.groups, self.mixed, self.batch)
        parts.append(f"carry {have:.0f} req/s" + ("" if have >= need - 1e-6 else f" < {need:.0f}: quotas bind"))
        return Decision(replicas, "; ".join(parts), dict(self.batch))


def make_headroom(scenario: Scenario, capacity: Capacity, headroom: float = DEFAULT_HEADROOM,
                  name: str = "headroom") -> HeadroomPolicy:
    caps = capacity_table(capacity, scenario)
    pools = scenario.runtime_pools()
    batch = {p.name: max(p.spec.batch_sizes, key=lambda b: caps[p.name][b]) for p in pools}
    usable = [p for p in pools if caps[p.name][batch[p.name]] > 0]
    order = sorted(usable, key=lambda p: p.price_per_hour / caps[p.name][batch[p.name]])
    return HeadroomPolicy(tuple(p.name for p in order), batch,
                          {p.name: capacity.fleet(p, batch[p.name], fleet_size_limit(scenario, p)) for p in usable},
                          {p.name: p.spec.min_replicas for p in pools}, {p.name: p.spec.max_replicas for p in pools},
                          gpu_groups(scenario), headroom, name, capacity.mixes())
