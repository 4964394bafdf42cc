"""Capacity under the SLO, measured with the simulator itself.

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
"""

from __future__ import annotations

from functools import cache

import numpy as np

from autotune.policies.static import StaticPolicy
from autotune.scenario import PoolRuntime, Scenario
from autotune.sim.cluster import SimConfig
from autotune.sim.run import simulate
from autotune.workload.arrivals import Arrivals

GROUP = 4
PROBE_GROUPS = (1, 2, 4, 8, 16)  # fleet sizes measured; per-replica capacity is interpolated in log2(n) between
PROBE_S = 60.0


def _attainment(scenario: Scenario, pool: PoolRuntime, batch: int, rate: float, seed: int, group: int) -> float:
    rng = np.random.default_rng([seed, 0xCA9])
    n = rng.poisson(rate * group * PROBE_S)
    t = np.sort(rng.random(n) * PROBE_S)
    tok = np.full(n, float(pool.max_tokens) / 2, dtype=np.float32)
    spec = pool.spec.model_copy(update={"min_replicas": group, "max_replicas": group, "initial_replicas": group,
                                        "preemption_rate_per_hour": 0.0, "spot": False,
                                        "batch_size": batch})
    sc = scenario.model_copy(update={"pools": [spec], "control_interval_s": PROBE_S, "drain_s": 5.0,
                                     "max_queued_requests": -1})
    res = simulate(sc, Arrivals(t, tok, PROBE_S, "probe"),
                   StaticPolicy({spec.name: group}, {spec.name: batch}), seed, SimConfig(instant_start=True))
    return float(res.summary()["slo_attainment"])


@cache
def _capacity(scenario_json: str, pool_index: int, batch: int, group: int = GROUP) -> float:
    scenario = Scenario.model_validate_json(scenario_json)
    pool = scenario.runtime_pools()[pool_index]
    slo_s = scenario.slo.latency_ms / 1e3
    if pool.batch_ms(batch, pool.max_tokens / 2) / 1e3 > slo_s:
        return 0.0
    hi = batch / (pool.batch_ms(batch, pool.max_tokens / 2) / 1e3)  # saturation throughput
    lo = 0.0
    for _ in range(12):
        mid = (lo + hi) / 2
        if _attainment(scenario, pool, batch, mid, seed=7, group=group) >= scenario.slo.target:
            lo = mid
        else:
            hi = mid
    return lo


def slo_capacity(scenario: Scenario, pool: PoolRuntime, batch: int) -> float:
    """Requests/s one replica of ``pool`` at ``batch`` sustains within the SLO (0 if it cannot)."""
    return _capacity(scenario.model_dump_json(), pool.index, batch)


def fleet_capacity(scenario: Scenario, pool: PoolRuntime, batch: int) -> tuple[float, ...]:
    """Req/s that n replicas of ``pool`` at ``batch`` sustain within the SLO, for n = 0..max_replicas.

    Per-replica capacity is measured at ``PROBE_GROUPS``, interpolated linearly
    in log2(n) between them and held at the largest probe beyond it (which
    understates bigger fleets slightly: on ``default`` 8 L4s carry 181.7 req/s
    each, 16 carry 183.2).
    """
    js = scenario.model_dump_json()
    # Up to the first probe at or past the quota, so a pool's curve does not depend on its quota.
    probes = [g for g in PROBE_GROUPS if g < pool.spec.max_replicas] or [1]
    probes += [g for g in PROBE_GROUPS if g > probes[-1]][:1]
    per = [_capacity(js, pool.index, batch, g) for g in probes]
    x = np.log2(np.asarray(probes, dtype=float))
    return (0.0,) + tuple(n * float(np.interp(np.log2(n), x, per)) for n in range(1, pool.spec.max_replicas + 1))


def replicas_for(need: float, totals: tuple[float, ...]) -> int:
    """Fewest replicas whose total in ``totals`` (by fleet size) covers ``need``; all of them if none does."""
    for n, have in enumerate(totals):
        if have >= need - 1e-6:
            return n
    return len(totals) - 1


def capacity_table(scenario: Scenario) -> dict[str, dict[int, float]]:
    return {p.name: {b: slo_capacity(scenario, p, b) for b in p.spec.batch_sizes} for p in scenario.runtime_pools()}
