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

from collections.abc import Callable
from dataclasses import dataclass, replace

from autotune.core import burst
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
DISPERSION_WINDOWS = 6  # a minute of windows: one window's estimate is noisy, a clumped load stays clumped
BurstFn = Callable[[str, float, float], tuple[float, ...]]  # (pool, dispersion, swing) -> req/s by fleet size


def dispersion_seen(obs: Observation, state: PolicyState) -> tuple[list[list[float]], tuple[float, float]]:
    """The recent windows' (index of dispersion, per-second swing), this one's appended, and the pair to size
    with: the median of each over the last ``DISPERSION_WINDOWS``."""
    now = list(burst.shape(obs.dispersion, obs.arrival_rate))
    seen = [list(x) for x in state.get("dispersion", []) if len(x) == 2][-(DISPERSION_WINDOWS - 1):] + [now]
    return seen, (burst.smoothed([x[0] for x in seen]), burst.smoothed([x[1] for x in seen]))


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
    bursty: BurstFn | None = None  # the same curves under bursty arrivals (Capacity.fleet's dispersion)
    dispersion: tuple[float, float] = (1.0, 0.0)  # the (dispersion, swing) buckets ``totals`` hold for

    @property
    def pool(self) -> str:
        return self.order[0]

    def at(self, shape: tuple[float, float]) -> HeadroomPolicy:
        """The rule sized for arrivals of that (index of dispersion, per-second swing), measured at their
        buckets (:func:`burst.bucket`, :func:`burst.bucket_swing`)."""
        d = (burst.bucket(shape[0]), burst.bucket_swing(shape[1]))
        if self.bursty is None or d == self.dispersion:
            return self
        # Fleets mixing GPU types are measured under Poisson arrivals only: under bursts the model stands.
        return replace(self, totals={name: self.bursty(name, *d) for name in self.totals}, dispersion=d,
                       mixed=self.mixed if d == (1.0, 0.0) else None)

    def initial_state(self) -> PolicyState:
        return {"rates": [], "dispersion": []}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        rates = (list(state["rates"]) + [obs.arrival_rate])[-FORECAST_WINDOWS:]
        seen, d = dispersion_seen(obs, state)
        load = forecast(rates)
        rule = self.at(d)
        return (rule.fleet(self.headroom * load, f"{self.headroom:g}x of {load:.0f} req/s{rule.burst_note()}"),
                {"rates": rates, "dispersion": seen})

    def burst_note(self) -> str:
        d, cv = self.dispersion
        return (f" at dispersion {d:g}" if d > 1.0 else "") + (f" swing {cv:g}" if cv > 0 else "")

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
    by_name = {p.name: p for p in usable}

    def bursty(pool: str, dispersion: float, swing: float) -> tuple[float, ...]:
        p = by_name[pool]
        return capacity.fleet(p, batch[pool], fleet_size_limit(scenario, p), dispersion, swing)

    return HeadroomPolicy(tuple(p.name for p in order), batch,
                          {p.name: capacity.fleet(p, batch[p.name], fleet_size_limit(scenario, p)) for p in usable},
                          {p.name: p.spec.min_replicas for p in pools}, {p.name: p.spec.max_replicas for p in pools},
                          gpu_groups(scenario), headroom, name, capacity.mixes(), bursty)
