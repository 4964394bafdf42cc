"""Rules size with the capacity that holds under the arrivals' measured burstiness (autotune.core.burst)."""

from __future__ import annotations

import numpy as np
import pytest

from autotune.core import burst
from autotune.registry import make_policy
from autotune.scenario import load_scenario
from autotune.sim import kernel as K
from autotune.sim.capacity import measure_capacity
from autotune.sim.run import simulate
from autotune.workload.arrivals import Arrivals

DURATION_S = 1800.0


def _clumped(rate: float, mean_clump: float, seed: int) -> Arrivals:
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.random(rng.poisson(rate / mean_clump * DURATION_S)) * DURATION_S)
    t = np.repeat(starts, rng.geometric(1.0 / mean_clump, starts.size))
    return Arrivals(t, np.zeros(t.size, np.float32), DURATION_S, "clumped")


def _after_warmup(res: object, from_s: float = 300.0) -> float:
    s = res.sim  # type: ignore[attr-defined]
    late = s.arr_t >= from_s
    ok = (s.status[late] == K.DONE) & (s.finish_t[late] - s.arr_t[late] <= res.scenario.slo.latency_ms / 1e3)  # type: ignore[attr-defined]
    return float(ok.mean())


def test_capacity_falls_with_clumping_and_a_larger_fleet_absorbs_clumps_better() -> None:
    sc = load_scenario("default")
    cap, pool = measure_capacity(sc), sc.runtime_pools()[0]
    per = {d: cap.fleet(pool, 8, 16, d) for d in (1.0, 4.0, 16.0)}
    for n in (4, 16):
        assert per[1.0][n] > per[4.0][n] > per[16.0][n]
    # per replica, 16 L4s lose less to clumps of 16 than 4 L4s do
    assert per[16.0][16] / per[1.0][16] > per[16.0][4] / per[1.0][4]


def test_predictive_sized_for_the_clumps_it_sees_keeps_the_slo_the_poisson_sizing_misses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sc = load_scenario("default")
    arr = _clumped(300.0, 8.0, 5)
    aware = simulate(sc, arr, make_policy("predictive", sc), 0)
    reasons = [w.decision.reason for w in aware.windows[40:] if w.decision]
    assert reasons and all("at dispersion 16" in r or "at dispersion 8" in r for r in reasons)
    monkeypatch.setattr(burst, "bucket", lambda d: 1.0)
    blind = simulate(sc, arr, make_policy("predictive", sc), 0)
    assert _after_warmup(blind) < 0.95 < sc.slo.target <= _after_warmup(aware)
    assert float(aware.summary()["cost_usd"]) > float(blind.summary()["cost_usd"])
