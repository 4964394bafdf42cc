"""Per-replica capacity under the SLO, measured with the simulator itself.

``slo_capacity(scenario, pool, batch)`` is the highest Poisson arrival rate per
replica at which a small group of replicas (``GROUP``, routed by power of two
choices) still finishes ``slo.target`` of requests within ``slo.latency_ms``.
The oracle plans fleets with it, and the RL observation normalizes load by it,
so "capacity" means one thing everywhere.
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
PROBE_S = 60.0


def _attainment(scenario: Scenario, pool: PoolRuntime, batch: int, rate: float, seed: int) -> float:
    rng = np.random.default_rng([seed, 0xCA9])
    n = rng.poisson(rate * GROUP * PROBE_S)
    t = np.sort(rng.random(n) * PROBE_S)
    tok = np.full(n, float(pool.max_tokens) / 2, dtype=np.float32)
    spec = pool.spec.model_copy(update={"min_replicas": GROUP, "max_replicas": GROUP, "initial_replicas": GROUP,
                                        "preemption_rate_per_hour": 0.0, "spot": False,
                                        "batch_size": batch})
    sc = scenario.model_copy(update={"pools": [spec], "control_interval_s": PROBE_S, "drain_s": 5.0,
                                     "max_queued_requests": -1})
    res = simulate(sc, Arrivals(t, tok, PROBE_S, "probe"),
                   StaticPolicy({spec.name: GROUP}, {spec.name: batch}), seed, SimConfig(instant_start=True))
    return float(res.summary()["slo_attainment"])


@cache
def _capacity(scenario_json: str, pool_index: int, batch: int) -> float:
    scenario = Scenario.model_validate_json(scenario_json)
    pool = scenario.runtime_pools()[pool_index]
    slo_s = scenario.slo.latency_ms / 1e3
    if pool.batch_ms(batch, pool.max_tokens / 2) / 1e3 > slo_s:
        return 0.0
    hi = batch / (pool.batch_ms(batch, pool.max_tokens / 2) / 1e3)  # saturation throughput
    lo = 0.0
    for _ in range(12):
        mid = (lo + hi) / 2
        if _attainment(scenario, pool, batch, mid, seed=7) >= scenario.slo.target:
            lo = mid
        else:
            hi = mid
    return lo


def slo_capacity(scenario: Scenario, pool: PoolRuntime, batch: int) -> float:
    """Requests/s one replica of ``pool`` at ``batch`` sustains within the SLO (0 if it cannot)."""
    return _capacity(scenario.model_dump_json(), pool.index, batch)


def capacity_table(scenario: Scenario) -> dict[str, dict[int, float]]:
    return {p.name: {b: slo_capacity(scenario, p, b) for b in p.spec.batch_sizes} for p in scenario.runtime_pools()}
