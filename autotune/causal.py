"""What no causal policy can do: the standing fleet a surprise needs, and what holding it costs.

A flash crowd that starts at ``t0`` is, until ``t0``, the calm load it rises
from. Built as the calm arrivals plus the crowd's extra arrivals on top
(:func:`surprise_arrivals`, superposed Poisson processes), the two traces are
the same request for request before ``t0``, so the simulator (same seed) shows
any policy the same observations, and a policy that decides from what it has
seen (every policy here but the oracles) holds the same fleet at ``t0`` on both.

:func:`least_standing_fleet` finds the cheapest fleet that, held until ``t0``,
keeps the SLO target under the best of the strongest responses at ``t0`` itself
(before a causal policy could even see the crowd): every pool of one GPU type
to its quota, for each type, or every pool to its quota (:func:`responses`;
every pool is not always best, since a slow GPU that takes its share of the
router's requests can lower attainment). The fleets are the oracle's menu, so a
cheaper fleet carries less within the SLO: a policy that holds one at ``t0``
misses the target on the crowd unless some other response beats these. A policy that does not know
when the crowd comes must hold that fleet at every moment it could come, on the
calm load too: that is the bound's price.

:func:`cold_start_best` is the same question at the start of a run: the best
of those responses from the scenario's initial fleet at the first decision.
Where it misses the target, no causal policy that starts cold keeps it, to within
the tenth of a point by which routing and service-time draws move as the number
of replicas started changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from autotune.core.types import Decision, Observation, PolicyState
from autotune.policies.headroom import make_headroom
from autotune.policies.oracle import scenario_menu
from autotune.scenario import Scenario
from autotune.sim.capacity import measure_capacity
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
class HoldThenGrow:
    """Hold ``fleet`` from the start; from ``t0`` on, ``grown`` (a response to a surprise at ``t0``)."""

    fleet: Mapping[str, int]
    grown: Mapping[str, int]
    batch: Mapping[str, int]
    t0: float
    name: str = "hold-then-grow"

    @property
    def first(self) -> Decision:
        return Decision(dict(self.fleet), "held", dict(self.batch))

    def initial_state(self) -> PolicyState:
        return {}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        if obs.time_s < self.t0 - 1e-9:
            return self.first, state
        return Decision(dict(self.grown), f"grown from {self.t0:g} s", dict(self.batch)), state


def responses(scenario: Scenario, fleet: Mapping[str, int]) -> list[dict[str, int]]:
    """The strongest answers to a surprise from ``fleet``: each GPU type's pools to their quotas, or all pools."""
    pools = scenario.runtime_pools()
    out: list[dict[str, int]] = []
    for gpu in sorted({p.spec.instance for p in pools}):
        grown = {p.name: p.spec.max_replicas if p.spec.instance == gpu else fleet.get(p.name, 0) for p in pools}
        if grown not in out:
            out.append(grown)
    every = {p.name: p.spec.max_replicas for p in pools}
    return out + ([every] if every not in out else [])


def best_response(scenario: Scenario, arrivals: Arrivals, fleet: Mapping[str, int], t0: float,
                  seed: int) -> SimResult:
    """The run of :func:`responses` that keeps the most requests within the SLO, ``fleet`` held until ``t0``."""
    batch = make_headroom(scenario, measure_capacity(scenario)).batch
    runs = [simulate(scenario, arrivals, HoldThenGrow(fleet, grown, batch, t0), seed)
            for grown in responses(scenario, fleet)]
    return max(runs, key=lambda r: float(r.summary()["slo_attainment"]))


def cold_start_best(scenario: Scenario, arrivals: Arrivals, seed: int) -> float:
    """Attainment of the best response from the initial fleet at the first decision: a cold start's ceiling."""
    init = {p.name: p.initial_replicas for p in scenario.pools}
    res = best_response(scenario, arrivals, init, scenario.control_interval_s, seed)
    return float(res.summary()["slo_attainment"])


@dataclass(frozen=True)
class StandingFleet:
    fleet: dict[str, int]
    usd_per_hour: float
    capacity: float  # req/s it carries within the SLO by the capacity model
    attainment: float  # on the surprise, held until t0, then the best response
    result: SimResult


def candidate_fleets(scenario: Scenario, up_to: float) -> list[tuple[dict[str, int], float]]:
    """The oracle's menu (every fleet worth buying, cheapest first, capacity rising), up to the first fleet that
    carries ``up_to`` req/s within the SLO: (fleet, capacity) pairs."""
    fleets, have = scenario_menu(scenario, measure_capacity(scenario)).upto(up_to)
    names = [p.name for p in scenario.runtime_pools()]
    return [({n: int(k) for n, k in zip(names, row, strict=True)}, float(c))
            for row, c in zip(fleets, have, strict=True)]


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
    tried: list[StandingFleet] = []
    for fleet, cap in fleets:
        res = best_response(scenario, surprise, fleet, t0, seed)
        got = StandingFleet(fleet, hourly(scenario, fleet), cap, float(res.summary()["slo_attainment"]), res)
        tried.append(got)
        if got.attainment >= scenario.slo.target:
            return got, tried
    return None, tried
