"""``oracle``: a clairvoyant plan, reported as a bound, not a deployable policy.

For every control window it knows the arrivals to come and picks the cheapest
fleet (replicas and batch size per pool, within the pools' limits) whose SLO
capacity at that fleet size (:mod:`autotune.capacity`) covers that window's
arrival rate. It is
simulated with no provisioning or model-load delay and no idle nodes, so
whatever any real policy pays beyond it is the price of not knowing the future
and of start-up delays.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from autotune.capacity import fleet_capacity, replicas_for, slo_capacity
from autotune.policies.types import Decision, Observation, PolicyState
from autotune.scenario import PoolRuntime, Scenario
from autotune.workload.arrivals import Arrivals

MAX_COMBOS = 200_000
PEAK_BIN_S = 5.0


def _best_batch(scenario: Scenario, p: PoolRuntime) -> tuple[int, float]:
    caps = {b: slo_capacity(scenario, p, b) for b in p.spec.batch_sizes}
    b = max(caps, key=lambda k: (caps[k], -k))
    return b, caps[b]


def cheapest_fleet(rate: float, pools: list[PoolRuntime], caps: list[float],
                   totals: list[tuple[float, ...]]) -> tuple[int, ...]:
    """Fewest dollars per hour with sum of SLO capacities >= rate, min/max replicas respected.

    ``caps`` (per replica) only ranks pools; ``totals[i][n]`` is what n replicas of pool i carry.
    """
    usable = [i for i, c in enumerate(caps) if c > 0]
    mins = [p.spec.min_replicas for p in pools]
    if not usable:
        return tuple(p.spec.max_replicas for p in pools)
    # Enumerate all pools but the most cost-efficient one, which takes the remainder.
    last = min(usable, key=lambda i: pools[i].price_per_hour / caps[i])
    others = [i for i in range(len(pools)) if i != last]
    ranges = [range(mins[i], pools[i].spec.max_replicas + 1) for i in others]
    if math.prod(len(r) for r in ranges) > MAX_COMBOS:
        ranges = [range(mins[i], mins[i] + 1) for i in others]
    best: tuple[float, tuple[int, ...]] | None = None
    for combo in itertools.product(*ranges):
        have = sum(totals[i][n] for n, i in zip(combo, others))
        need = max(0.0, rate - have)
        n_last = max(mins[last], replicas_for(need, totals[last]))
        if totals[last][n_last] < need - 1e-6:
            continue
        fleet = [0] * len(pools)
        for n, i in zip(combo, others):
            fleet[i] = n
        fleet[last] = n_last
        cost = sum(n * p.price_per_hour for n, p in zip(fleet, pools))
        if best is None or cost < best[0] - 1e-12:
            best = (cost, tuple(fleet))
    return best[1] if best else tuple(p.spec.max_replicas for p in pools)


@dataclass(frozen=True)
class OraclePolicy:
    interval_s: float
    plan: tuple[Decision, ...]
    name: str = "oracle"

    def initial_state(self) -> PolicyState:
        return {}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        k = min(int(round(obs.time_s / self.interval_s)), len(self.plan) - 1)
        return self.plan[k], state

    @property
    def first(self) -> Decision:
        return self.plan[0]


def make_oracle(scenario: Scenario, arrivals: Arrivals) -> OraclePolicy:
    pools = scenario.runtime_pools()
    chosen = [_best_batch(scenario, p) for p in pools]
    caps = [c for _, c in chosen]
    totals = [fleet_capacity(scenario, p, b) if c > 0 else (0.0,) * (p.spec.max_replicas + 1)
              for p, (b, c) in zip(pools, chosen)]
    step = scenario.control_interval_s
    n_windows = int(math.ceil((arrivals.duration_s + scenario.drain_s) / step)) + 1
    # Size each window for its busiest PEAK_BIN_S slice, not its mean: a burst that
    # starts mid-window would otherwise queue for half a window even with foresight.
    sub = max(1, int(round(step / PEAK_BIN_S)))
    bins = np.bincount(np.minimum((arrivals.times // (step / sub)).astype(np.int64), n_windows * sub - 1),
                       minlength=n_windows * sub).reshape(n_windows, sub)
    peak = bins.max(axis=1) * sub / step
    plan = []
    cache: dict[int, tuple[int, ...]] = {}
    for k in range(n_windows):
        rate = float(peak[k])
        key = int(math.ceil(rate))
        if key not in cache:
            cache[key] = cheapest_fleet(key, pools, caps, totals)
        fleet = cache[key]
        cap = sum(t[n] for n, t in zip(fleet, totals))
        plan.append(Decision(
            {p.name: n for p, n in zip(pools, fleet)},
            f"window {k}: peak {rate:.0f} req/s ahead, capacity {cap:.0f} req/s",
            {p.name: b for p, (b, _) in zip(pools, chosen)},
        ))
    return OraclePolicy(step, tuple(plan))
