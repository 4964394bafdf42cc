"""``headroom[:M]``: hold M times the replicas the load needs by SLO capacity, on the cheapest pool.

A target-tracking rule that knows what Ray's does not: per-replica capacity
*within the SLO* at each batch size (:mod:`autotune.capacity`) and prices.
Every window: forecast = max(last window's rate, mean of the last three) (up
within one window, down only once the lower rate has lasted); the pool with
the fewest dollars per req/s of SLO capacity runs ceil(M x forecast / capacity)
replicas; the other pools sit at their minimum; every pool runs the batch size
that gives it the most SLO capacity.

It is exactly what an untrained RL policy does (``autotune.rl.features``
starts every pool at this rule with M = 1.2), and swept over M in hindsight
(``bench/headroom_bound.py``) it is the strongest fixed rule of its kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autotune.capacity import capacity_table
from autotune.policies.types import Decision, Observation, PolicyState
from autotune.scenario import Scenario

DEFAULT_HEADROOM = 1.2
FORECAST_WINDOWS = 3


def forecast(rates: list[float]) -> float:
    """Load to size for: the larger of the last window's rate and the mean of the last three.

    Taking the max reacts to a rise within one window and scales down only once
    the lower rate has lasted a while, which is what start-up delays reward.
    The RL features use the same forecast (``autotune.rl.features.forecast_rate``).
    """
    if not rates:
        return 0.0
    recent = rates[-FORECAST_WINDOWS:]
    return max(rates[-1], sum(recent) / len(recent))


@dataclass(frozen=True)
class HeadroomPolicy:
    pool: str  # the cheapest pool per req/s of SLO capacity
    batch: dict[str, int]  # per pool, the batch size with the most SLO capacity
    capacity: float  # req/s per replica of ``pool`` within the SLO at its batch size
    min_replicas: dict[str, int]
    max_replicas: int
    headroom: float = DEFAULT_HEADROOM
    name: str = "headroom"

    def initial_state(self) -> PolicyState:
        return {"rates": []}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        rates = (list(state["rates"]) + [obs.arrival_rate])[-FORECAST_WINDOWS:]
        load = forecast(rates)
        n = math.ceil(self.headroom * load / self.capacity - 1e-6)
        replicas = dict(self.min_replicas)
        replicas[self.pool] = min(max(n, self.min_replicas[self.pool]), self.max_replicas)
        why = (f"{self.pool}: {self.headroom:g}x of {load:.0f} req/s at {self.capacity:.1f} req/s per replica "
               f"(batch {self.batch[self.pool]}) -> {replicas[self.pool]}")
        return Decision(replicas, why, dict(self.batch)), {"rates": rates}


def make_headroom(scenario: Scenario, headroom: float = DEFAULT_HEADROOM, name: str = "headroom") -> HeadroomPolicy:
    caps = capacity_table(scenario)
    usable = [p for p in scenario.runtime_pools() if max(caps[p.name].values()) > 0]
    best = min(usable, key=lambda p: p.price_per_hour / max(caps[p.name].values()))
    batch = {p.name: max(p.spec.batch_sizes, key=lambda b: caps[p.name][b]) for p in scenario.runtime_pools()}
    return HeadroomPolicy(best.name, batch, caps[best.name][batch[best.name]],
                          {p.name: p.min_replicas for p in scenario.pools}, best.spec.max_replicas, headroom, name)
