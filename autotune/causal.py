"""What no causal policy can do: the standing fleet a surprise needs, and what holding it costs.

A flash crowd that starts at ``t0`` is, until ``t0``, the calm load it rises
from. Built as the calm arrivals plus the crowd's extra arrivals on top
(:func:`surprise_arrivals`, superposed Poisson processes), the two traces are
the same request for request before ``t0``, so the simulator (same seed) shows
any policy the same observations, and a policy that decides from what it has
seen (every policy here but the oracles) holds the same fleet at ``t0`` on both.

:func:`least_standing_fleet` finds the cheapest fleet that, held until ``t0``
and then told to grow to every pool's quota at ``t0`` itself (before a causal
policy could even see the crowd, so no policy reacts sooner), keeps the SLO
target. A policy that holds a cheaper fleet at ``t0`` misses the target on the
crowd whatever it does next (more capacity, sooner, never lowers attainment
here: checked on the way, since the search walks fleets by price). A policy
that does not know when the crowd comes must hold that fleet at every moment
it could come, on the calm load too: that is the bound's price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from autotune.capacity import pooled_capacity
from autotune.policies.headroom import make_headroom
from autotune.policies.types import Decision, Observation, PolicyState
from autotune.scenario import Scenario
from autotune.sim.run import SimResult, simulate
from autotune.workload import synthetic
from autotune.workload.arrivals import Arrivals


def surprise_arrivals(calm_rate: float, curve: np.ndarray, duration_s: float,
                      seed: int) -> tuple[Arrivals, Arrivals]:
    """(calm, surprise): Poisson arrivals at ``calm_rate``, and the same plus those of ``curve - calm_rate``.

    ``curve`` is a rate per ``synthetic.BIN_S`` bin that never falls below
    ``calm_rate``; where it equals it, the two traces are identical.
    """
    if np.any(curve < calm_rate - 1e-9):
        raise ValueError("the surprise's rate curve must not fall below the calm rate")
    calm_rng, extra_rng = (np.random.default_rng([seed, 0xCA5, k]) for k in (0, 1))  # apart: calm is a prefix
    calm_t = synthetic.sample_poisson(np.full(curve.size, calm_rate), synthetic.BIN_S, None, calm_rng)
    extra_t = synthetic.sample_poisson(curve - calm_rate, synthetic.BIN_S, None, extra_rng)
    calm_t, extra_t = calm_t[calm_t < duration_s], extra_t[extra_t < duration_s]
    calm_tok = synthetic.synthetic_tokens(calm_t.size, {}, calm_rng)
    extra_tok = synthetic.synthetic_tokens(extra_t.size, {}, extra_rng)
    order = np.argsort(np.concatenate([calm_t, extra_t]), kind="stable")
    both_t, both_tok = np.concatenate([calm_t, extra_t])[order], np.concatenate([calm_tok, extra_tok])[order]
    return Arrivals(calm_t, calm_tok, duration_s, "calm"), Arrivals(both_t, both_tok, duration_s, "surprise")


@dataclass(frozen=True)
class HoldThenAll:
    """Hold ``fleet`` from the start; from ``t0`` on, every pool at its quota: the best any response can do."""

    fleet: Mapping[str, int]
    quota: Mapping[str, int]
    batch: Mapping[str, int]
    t0: float
    name: str = "hold-then-all"

    @property
    def first(self) -> Decision:
        return Decision(dict(self.fleet), "held", dict(self.batch))

    def initial_state(self) -> PolicyState:
        return {}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        if obs.time_s < self.t0 - 1e-9:
            return self.first, state
        return Decision(dict(self.quota), f"all from {self.t0:g} s", dict(self.batch)), state


@dataclass(frozen=True)
class StandingFleet:
    fleet: dict[str, int]
    usd_per_hour: float
    capacity: float  # req/s it carries within the SLO by the capacity model
    attainment: float  # on the surprise, held until t0 and then all
    result: SimResult


def candidate_fleets(scenario: Scenario, up_to: float) -> list[tuple[dict[str, int], float]]:
    """The fleets the rules would hold for growing needs (cheapest pools first), with their capacity, by price."""
    rule = make_headroom(scenario)
    seen: dict[tuple[tuple[str, int], ...], tuple[dict[str, int], float]] = {}
    need = 1.0
    while need <= up_to:
        d = rule.fleet(need, "")
        fleet = {k: int(v) for k, v in d.replicas.items()}
        seen.setdefault(tuple(sorted(fleet.items())), (fleet, pooled_capacity(fleet, rule.totals, rule.groups)))
        need *= 1.02
    return sorted(seen.values(), key=lambda fc: hourly(scenario, fc[0]))


def hourly(scenario: Scenario, fleet: Mapping[str, int]) -> float:
    prices = {p.name: p.price_per_hour for p in scenario.runtime_pools()}
    return float(sum(prices[name] * n for name, n in fleet.items()))


def least_standing_fleet(scenario: Scenario, surprise: Arrivals, t0: float, seed: int,
                         fleets: Sequence[tuple[dict[str, int], float]]) -> tuple[StandingFleet | None,
                                                                                 list[StandingFleet]]:
    """The cheapest of ``fleets`` that keeps the target on ``surprise`` held until ``t0``, and every one tried.

    Walks ``fleets`` by price and stops at the first that keeps it; the tried
    ones are returned so a caller can show the attainment rising with the fleet.
    """
    rule = make_headroom(scenario)
    quota = {p.name: p.spec.max_replicas for p in scenario.runtime_pools()}
    tried: list[StandingFleet] = []
    for fleet, cap in fleets:
        res = simulate(scenario, surprise, HoldThenAll(fleet, quota, rule.batch, t0), seed)
        got = StandingFleet(fleet, hourly(scenario, fleet), cap, float(res.summary()["slo_attainment"]), res)
        tried.append(got)
        if got.attainment >= scenario.slo.target:
            return got, tried
    return None, tried
