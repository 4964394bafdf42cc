"""``burst[:M]``: the ``headroom`` rule that remembers how bursty the load has been.

A burst that outruns the start-up delay (145 s for an L4 node and its model)
can only be served by capacity already running, so a policy that wants the
SLO on bursty load must hold burst capacity through the calm in between, and
one that does so on smooth load wastes money. This rule measures burstiness
instead of assuming it: each window's rate over the median of the previous
five minutes (the base load) is a burst ratio, and the largest ratio of the
last half hour says how far above the base a burst may go. It holds
M x max(forecast, ratio x base), on the cheapest pools first (``headroom``'s
spill-over). On smooth load the ratio stays near 1 and it is ``headroom:M``;
after a 3x burst it holds about 3x the calm load for half an hour.

A rule, not a forecaster: it cannot know when a burst comes, only how large
recent ones were, which is what bounds it above the clairvoyant ``oracle``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from autotune.core.types import Decision, Observation, PolicyState
from autotune.policies.headroom import DEFAULT_HEADROOM, HeadroomPolicy, forecast, make_headroom
from autotune.policies.sizing import Capacity
from autotune.scenario import Scenario

BASE_S = 300.0  # the base load is the median rate of this long before the window
MEMORY_S = 1800.0  # how long a burst is remembered
MAX_RATIO = 4.0  # a ratio beyond this is a regime change (a flash crowd that stays), not a burst


def base_load(rates: list[float], base_windows: int) -> float:
    """Median rate of the ``base_windows`` before the last one in ``rates`` (0 until half of them are seen)."""
    window = rates[:-1][-base_windows:]
    return statistics.median(window) if window and len(window) >= base_windows // 2 else 0.0


def remember(rates: list[float], ratios: list[float], base_windows: int, memory_windows: int) -> list[float]:
    """The burst ratios with the last window of ``rates`` folded in (the last ``memory_windows`` kept)."""
    base = base_load(rates, base_windows)
    out = list(ratios) + ([min(rates[-1] / base, MAX_RATIO)] if base > 0 else [])
    return out[-memory_windows:]


def burst_size(rates: list[float], ratios: list[float], base_windows: int) -> tuple[float, float, float]:
    """(size, ratio, base): the load to hold headroom on, max(forecast, ratio x base)."""
    ratio = max(1.0, max(ratios, default=1.0))
    base = base_load(rates, base_windows)
    return max(forecast(rates), ratio * base), ratio, base


def windows(scenario_interval_s: float) -> tuple[int, int]:
    """(base, memory) lengths in control windows."""
    return max(2, round(BASE_S / scenario_interval_s)), max(1, round(MEMORY_S / scenario_interval_s))


@dataclass(frozen=True)
class BurstPolicy:
    rule: HeadroomPolicy  # pools, capacities and the spill-over fill
    base_windows: int
    memory_windows: int
    name: str = "burst"

    def initial_state(self) -> PolicyState:
        return {"rates": [], "ratios": []}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        rates = (list(state["rates"]) + [obs.arrival_rate])[-(self.base_windows + 1):]
        ratios = remember(rates, state["ratios"], self.base_windows, self.memory_windows)
        size, ratio, base = burst_size(rates, ratios, self.base_windows)
        why = (f"{self.rule.headroom:g}x of max({forecast(rates):.0f} req/s, {ratio:.2f} x base {base:.0f}) "
               f"= {self.rule.headroom * size:.0f} req/s")
        return self.rule.fleet(self.rule.headroom * size, why), {"rates": rates, "ratios": ratios}


def make_burst(scenario: Scenario, capacity: Capacity, headroom: float = DEFAULT_HEADROOM,
               name: str = "burst") -> BurstPolicy:
    base, memory = windows(scenario.control_interval_s)
    return BurstPolicy(make_headroom(scenario, capacity, headroom, name), base, memory, name)
