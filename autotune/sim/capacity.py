"""Capacity under the SLO, measured with the simulator itself: the :class:`~autotune.policies.sizing.Capacity`
policies size fleets with.

``slo_capacity(scenario, pool, batch)`` is the highest Poisson arrival rate per
replica at which a small group of replicas (``GROUP``, routed by power of two
choices) still finishes ``slo.target`` of requests within ``slo.latency_ms``.
The RL observation normalizes load by it, so one number means "a replica".

``fleet_capacity(scenario, pool, batch)`` is the same measure for fleets of
every size, which is what sizing a fleet needs: pooling lets a replica carry
more within a latency bound as the fleet grows (on ``mixed-large`` one L4
carries 11.5 req/s within 50 ms, sixteen carry 43 each), so the group-of-4
figure overstates small fleets and understates large ones. The rules, the
oracle and the RL level actions size fleets with it.

A fleet that mixes GPU types is measured (:class:`MixedFleets`), since no model
of how the router shares load between a fast and a slow GPU fits every
scenario. :func:`measure_capacity` bundles the three as one object; every
measurement is made once per process and cached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np

from autotune.policies.sizing import gpu_groups
from autotune.policies.static import StaticPolicy
from autotune.scenario import PoolRuntime, PoolSpec, Scenario
from autotune.sim.cluster import SimConfig
from autotune.sim.run import simulate
from autotune.workload.arrivals import Arrivals

GROUP = 4
PROBE_GROUPS = (1, 2, 4, 8, 16)  # fleet sizes measured; per-replica capacity is interpolated in log2(n) between
PROBE_S = 60.0


def fixed_pool(spec: PoolSpec, n: int, batch: int) -> PoolSpec:
    """``spec`` held at ``n`` replicas and ``batch``, never preempted: the fleet a probe measures."""
    return spec.model_copy(update={"min_replicas": n, "max_replicas": max(n, 1), "initial_replicas": n,
                                   "preemption_rate_per_hour": 0.0, "spot": False, "batch_size": batch,
                                   "max_queued_requests": -1})


def probe_times(rate: float, probe_s: float, dispersion: float, rng: np.random.Generator,
                swing: float = 0.0) -> np.ndarray:
    """Arrivals at ``rate`` whose counts have index of dispersion ``dispersion``: Poisson at 1, else clumps
    of geometric size (mean (D + 1) / 2, so E[S^2] / E[S] = D) at Poisson instants; with ``swing`` > 0 the
    rate of each second is lognormal around ``rate`` with that coefficient of variation."""
    if dispersion <= 1.0 and swing <= 0:
        return np.sort(rng.random(rng.poisson(rate * probe_s)) * probe_s)
    mean = max(1.0, (dispersion + 1.0) / 2.0)
    seconds = int(np.ceil(probe_s))
    level = np.ones(seconds)
    if swing > 0:
        sigma2 = np.log1p(swing**2)
        level = rng.lognormal(-sigma2 / 2, np.sqrt(sigma2), seconds)
    n = rng.poisson(rate * level / mean)
    starts = np.repeat(np.arange(seconds, dtype=float), n) + rng.random(int(n.sum()))
    starts = np.sort(starts[starts < probe_s])
    if mean <= 1.0:
        return starts
    return np.repeat(starts, rng.geometric(1.0 / mean, starts.size))


def _attainment(scenario: Scenario, fleet: Mapping[str, int], batch: Mapping[str, int], rate: float, seed: int,
                salt: int, probe_s: float = PROBE_S, dispersion: float = 1.0, swing: float = 0.0) -> float:
    """SLO attainment of a fixed fleet over ``probe_s`` of arrivals at ``rate`` req/s in total, Poisson or,
    with ``dispersion`` > 1, clumped (:func:`probe_times`)."""
    pools = [p for p in scenario.runtime_pools() if p.name in fleet]
    rng = np.random.default_rng([seed, salt])
    t = probe_times(rate, probe_s, dispersion, rng, swing)
    n = t.size
    tok = np.full(n, float(pools[0].max_tokens) / 2, dtype=np.float32)
    sc = scenario.model_copy(update={"pools": [fixed_pool(p.spec, fleet[p.name], batch[p.name]) for p in pools],
                                     "control_interval_s": probe_s, "drain_s": 5.0, "max_queued_requests": -1,
                                     "client_timeout_s": None})
    res = simulate(sc, Arrivals(t, tok, probe_s, "probe"), StaticPolicy(dict(fleet), dict(batch)), seed,
                   SimConfig(instant_start=True))
    return float(res.summary()["slo_attainment"])


def _highest_rate(attained: Callable[[float], float], hi: float, target: float) -> float:
    """Bisection below ``hi`` for the highest rate whose attainment still meets ``target``."""
    lo = 0.0
    for _ in range(12):
        mid = (lo + hi) / 2
        if attained(mid) >= target:
            lo = mid
        else:
            hi = mid
    return lo


@cache
def _capacity(scenario_json: str, pool_index: int, batch: int, group: int = GROUP, dispersion: float = 1.0,
              swing: float = 0.0) -> float:
    scenario = Scenario.model_validate_json(scenario_json)
    pool = scenario.runtime_pools()[pool_index]
    slo_s = scenario.slo.latency_ms / 1e3
    if pool.batch_ms(batch, pool.max_tokens / 2) / 1e3 > slo_s:
        return 0.0
    hi = batch / (pool.batch_ms(batch, pool.max_tokens / 2) / 1e3)  # saturation throughput
    fleet, batches = {pool.name: group}, {pool.name: batch}
    return _highest_rate(lambda r: _attainment(scenario, fleet, batches, r * group, seed=7, salt=0xCA9,
                                               dispersion=dispersion, swing=swing), hi, scenario.slo.target)


def slo_capacity(scenario: Scenario, pool: PoolRuntime, batch: int) -> float:
    """Requests/s one replica of ``pool`` at ``batch`` sustains within the SLO (0 if it cannot)."""
    return _capacity(scenario.model_dump_json(), pool.index, batch)


def fleet_capacity(scenario: Scenario, pool: PoolRuntime, batch: int, up_to: int | None = None,
                   dispersion: float = 1.0, swing: float = 0.0) -> tuple[float, ...]:
    """Req/s that n replicas of ``pool`` at ``batch`` sustain within the SLO, for n = 0..``up_to``.

    ``dispersion``, ``swing``: under arrivals that bursty (:func:`probe_times`); 1 and 0 are Poisson.

    ``up_to`` defaults to the pool's quota; pooled sizing (:func:`pooled_capacity`)
    asks for more, since a replica of a small pool serves in a fleet as large as
    all the pools on its GPU together. Per-replica capacity is measured at ``PROBE_GROUPS``,
    interpolated linearly in log2(n) between them and held at the largest probe
    beyond it (which understates bigger fleets slightly: on ``default`` 8 L4s
    carry 181.7 req/s each, 16 carry 183.2).
    """
    js = scenario.model_dump_json()
    up_to = pool.spec.max_replicas if up_to is None else up_to
    # Up to the first probe at or past ``up_to``, so a curve's values do not depend on how far it runs.
    probes = [g for g in PROBE_GROUPS if g < up_to] or [1]
    probes += [g for g in PROBE_GROUPS if g > probes[-1]][:1]
    per = [_capacity(js, pool.index, batch, g, float(dispersion), float(swing)) for g in probes]
    x = np.log2(np.asarray(probes, dtype=float))
    return (0.0,) + tuple(n * float(np.interp(np.log2(n), x, per)) for n in range(1, up_to + 1))


@dataclass(frozen=True)
class MixedFleets:
    """Measured SLO capacity of fleets that mix GPU types, each fleet measured once per process.

    The router balances ongoing requests, not latency, so how a fast and a slow GPU
    share load depends on their queue limits, and no one rule fits: on ``mixed-large``
    (queue limits 2 and 8) an A100 beside L4s carries 9-15% more than the pools apart,
    on ``mixed`` (64 and 32) a T4 beside L4s carries up to 2.5x less
    (tests/sim/test_capacity.py). So such a fleet is measured the way one pool's
    fleet is (:func:`measured_capacity`: bisection on 60 s Poisson probes, fixed seed),
    when sizing first asks about it. Sizing fills the cheapest GPU first, so on the
    scenarios here only a handful of mixes is ever asked about (on ``mixed-large`` the
    full L4 quotas with 1-4 A100s, about 0.2 s each).
    """

    scenario_json: str

    def __call__(self, fleet: Mapping[str, int], batch: Mapping[str, int], modeled: float) -> float:
        key = tuple(sorted((name, int(n)) for name, n in fleet.items() if n))
        return _mixed(self.scenario_json, key, tuple(sorted((k, int(batch[k])) for k, _ in key)),
                      max(2.0 * modeled, 1.0))


# Probes of large fleets are shortened to this many requests (at least 10 s): a 6,000 req/s fleet on ``mixed``
# is measured to well under 1% in 10 s, and 60 s probes made the oracle's first plan there take minutes.
MIX_PROBE_REQUESTS = 120_000


@cache
def _mixed(scenario_json: str, fleet: tuple[tuple[str, int], ...], batch: tuple[tuple[str, int], ...],
           hi: float) -> float:
    probe_s = min(PROBE_S, max(10.0, MIX_PROBE_REQUESTS / hi))
    return measured_capacity(Scenario.model_validate_json(scenario_json), dict(fleet), dict(batch), hi,
                             probe_s=probe_s)


def measured_capacity(scenario: Scenario, fleet: Mapping[str, int], batch: Mapping[str, int], hi: float,
                      seed: int = 7, probe_s: float = PROBE_S) -> float:
    """Highest Poisson rate a fixed fleet spread over pools keeps the SLO at, by bisection below ``hi``.

    What :func:`pooled_capacity` models, measured the way ``slo_capacity`` is (for fleets that mix GPU
    types, :class:`MixedFleets`, and for checks).
    """
    return _highest_rate(lambda r: _attainment(scenario, fleet, batch, r, seed, 0xF1E, probe_s), hi,
                         scenario.slo.target)


@dataclass(frozen=True)
class SimCapacity:
    """A scenario's SLO capacity, measured with the simulator when first asked for (cached per process)."""

    scenario: Scenario

    def replica(self, pool: PoolRuntime, batch: int) -> float:
        return slo_capacity(self.scenario, pool, batch)

    def fleet(self, pool: PoolRuntime, batch: int, up_to: int | None = None,
              dispersion: float = 1.0, swing: float = 0.0) -> tuple[float, ...]:
        return fleet_capacity(self.scenario, pool, batch, up_to, dispersion, swing)

    def mixes(self) -> MixedFleets | None:
        """Fleets mixing GPU types measured, where the scenario has more than one GPU type."""
        return MixedFleets(self.scenario.model_dump_json()) if len(set(gpu_groups(self.scenario).values())) > 1 \
            else None


def measure_capacity(scenario: Scenario) -> SimCapacity:
    """The capacity object a policy for ``scenario`` is built with."""
    return SimCapacity(scenario)
