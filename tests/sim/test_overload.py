"""Graceful overload: a queue cap sheds what the fleet cannot carry; client timeouts abandon the queue."""

from __future__ import annotations

import numpy as np
import pytest

from autotune.policies.overload import queue_cap
from autotune.policies.static import StaticPolicy
from autotune.registry import make_policy
from autotune.sim import kernel as K
from autotune.sim.capacity import measure_capacity
from autotune.sim.run import SUMMARY_COLUMNS, SimResult, simulate
from autotune.workload.arrivals import build_arrivals
from tests.conftest import arrivals_at, tweak

FLEET = 4  # L4s, and the quota: the fleet cannot grow into the surge
SURGE_START, SURGE_S = 180.0, 120.0  # a 5x flash crowd over the calm 300 req/s
AFTER_S = 300.0  # the minutes after the surge in which the backlog is felt


@pytest.fixture(scope="module")
def crowd(default_scenario):
    wl = default_scenario.workload.model_copy(update={
        "generator": "flash", "mean_rate": 300.0, "duration_s": 900.0,
        "params": {"spike_factor": 5.0, "spike_start_frac": SURGE_START / 900.0, "spike_duration_s": SURGE_S,
                   "ramp_s": 10.0}})
    sc = tweak(default_scenario, {"max_replicas": FLEET}, workload=wl)
    return sc, build_arrivals(sc, 0)


@pytest.fixture(scope="module")
def sizing(crowd):
    sc, _ = crowd
    cap = measure_capacity(sc)
    rt = sc.runtime_pools()[0]
    per_replica = cap.replica(rt, 8)
    service_ms = rt.spec.batch_wait_timeout_s * 1e3 + rt.batch_ms(8)
    fleet_rps = cap.fleet(rt, 8, FLEET)[FLEET]
    return cap, queue_cap(per_replica, FLEET, sc.slo.latency_ms, service_ms), fleet_rps


def _run(sc, arr, seed: int = 0) -> SimResult:
    return simulate(sc, arr, StaticPolicy({"l4": FLEET}, {"l4": 8}), seed)


def _after_surge_attainment(res: SimResult) -> float:
    r = res.request_records()
    end = SURGE_START + SURGE_S
    after = (r["arrival_s"] >= end + 10.0) & (r["arrival_s"] < end + 10.0 + AFTER_S)
    on_time = (r["finish_s"][after] - r["arrival_s"][after]) * 1e3 <= res.scenario.slo.latency_ms
    return float(np.mean(on_time))


def _surge_excess(res: SimResult, fleet_rps: float) -> float:
    """Requests of the surge beyond what the fleet carries within the SLO in that time."""
    a = res.request_records()["arrival_s"]
    lo, hi = SURGE_START - 10.0, SURGE_START + SURGE_S + 10.0  # with the ramps
    in_surge = int(np.sum((a >= lo) & (a < hi)))
    return in_surge - fleet_rps * (hi - lo)


def test_unbounded_queue_makes_requests_after_a_surge_miss_a_sized_cap_sheds_only_the_excess(crowd, sizing):
    sc, arr = crowd
    _, cap, fleet_rps = sizing
    unbounded = _run(sc, arr)
    capped = _run(tweak(sc, {"max_queued_requests": cap}), arr)
    after_unbounded, after_capped = _after_surge_attainment(unbounded), _after_surge_attainment(capped)
    # The backlog the surge left takes minutes to drain: requests long after it still miss.
    assert after_unbounded < 0.7
    assert unbounded.summary()["dropped"] == 0
    # Capped, a request is either turned away at once or served within the SLO once the surge is over.
    assert after_capped >= sc.slo.target
    s = capped.summary()
    excess = _surge_excess(capped, fleet_rps)
    assert s["rejected"] == s["dropped"] > 0
    # What it costs is about the requests the fleet could not carry (it serves a little more than its SLO
    # capacity when saturated, so somewhat fewer are turned away), not every request after them.
    assert 0.7 * excess <= s["rejected"] <= 1.05 * excess
    assert s["slo_attainment"] > unbounded.summary()["slo_attainment"]
    assert s["p99_ms"] < 1000 < unbounded.summary()["p99_ms"]


def test_shed_policy_sets_the_cap_each_window_from_running_replicas(crowd, sizing):
    sc, arr = crowd
    cap_obj, cap, _ = sizing
    res = simulate(sc, arr, make_policy(f"static:l4={FLEET}+shed", sc, cap_obj), 0)
    caps = {w.max_queued["l4"] for w in res.windows[1:]}
    assert caps == {cap}  # the fleet is static: the cap its first decision set holds
    assert res.windows[0].max_queued == {"l4": -1}  # the scenario's until a decision changes it
    assert _after_surge_attainment(res) >= sc.slo.target
    assert res.summary()["rejected"] > 0


def test_client_timeout_abandons_queued_requests_which_are_never_served(crowd):
    sc, arr = crowd
    timeout = 2.0
    res = _run(tweak(sc, client_timeout_s=timeout), arr)
    s = res.summary()
    r = res.request_records()
    assert s["timed_out"] > 0 and s["dropped"] == 0
    assert int(r["timed_out"].sum()) == s["timed_out"]
    gone = r["timed_out"]
    assert np.all(np.isnan(r["finish_s"][gone])) and np.all(r["replica"][gone] == -1)
    served = ~np.isnan(r["finish_s"])
    # Whoever was served left the router queue before its client's timeout (the replica's own work follows).
    waited = r["start_s"][served] - r["arrival_s"][served]
    assert waited.max() < timeout + 1.0
    # Abandoned requests free their place: the backlog, and the misses after the surge, go with them.
    assert _after_surge_attainment(res) > _after_surge_attainment(_run(sc, arr))
    # Every request is exactly one of on time, late, dropped, timed out.
    on_time = s["slo_attainment"] * s["requests"]
    assert round(on_time) + s["late"] + s["dropped"] + s["timed_out"] == s["requests"]


def test_timeout_on_a_hand_made_queue():
    """One replica busy for a while: requests queued behind it past their timeout leave, the rest are served."""
    from autotune.scenario import load_scenario

    sc = tweak(load_scenario("default"), {"batch_sizes": [1], "batch_size": 1, "max_ongoing_requests": 1,
                                          "initial_replicas": 1, "min_replicas": 1},
               client_timeout_s=0.05, proxy_overhead_ms=0.0)
    rt = sc.runtime_pools()[0]
    service_s = rt.batch_ms(1) / 1e3
    # 20 requests at once on a replica that serves one at a time: about timeout / service of them get served.
    res = simulate(sc, arrivals_at([0.0] * 20, 1.0), StaticPolicy({"l4": 1}, {"l4": 1}), 0)
    s = res.summary()
    assert s["timed_out"] + int(np.sum(res.sim.status == K.DONE)) == 20
    assert 0.5 * 0.05 / service_s <= 20 - s["timed_out"] <= 0.05 / service_s + 3


def test_window_and_summary_columns_add_up_and_repeat(crowd, sizing):
    sc, arr = crowd
    _, cap, _ = sizing
    sc = tweak(sc, {"max_queued_requests": cap}, client_timeout_s=1.0)
    a, b = _run(sc, arr, seed=3), _run(sc, arr, seed=3)
    assert a.summary() == b.summary()
    assert {"rejected", "timed_out", "late"} <= set(SUMMARY_COLUMNS) <= set(a.summary())
    rows = a.window_records()
    assert {"dropped", "rejected", "timed_out", "late", "l4_max_queued"} <= set(rows[0])
    s = a.summary()
    for col in ("rejected", "timed_out", "late"):
        assert sum(int(r[col]) for r in rows) == s[col]
    assert s["rejected"] > 0
    assert sum(w.obs.timed_out for w in a.windows) == s["timed_out"]


def test_queue_cap_rule():
    assert queue_cap(100.0, 4, 100.0) == 40  # 4 replicas drain 400 req/s: 40 in 100 ms
    assert queue_cap(100.0, 4, 100.0, service_ms=50.0) == 20
    assert queue_cap(100.0, 0, 100.0) == 1  # nothing running: the least Serve accepts
    assert queue_cap(100.0, 4, 100.0, service_ms=150.0) == 1


def test_scenario_queue_caps_validate_and_inherit(default_scenario):
    sc = tweak(default_scenario, max_queued_requests=50)
    assert sc.pool_max_queued(sc.pools[0]) == 50
    own = tweak(sc, {"max_queued_requests": 7})
    assert own.pool_max_queued(own.pools[0]) == 7
    with pytest.raises(ValueError):
        tweak(default_scenario, {"max_queued_requests": 0})
    with pytest.raises(ValueError):
        tweak(default_scenario, max_queued_requests=-2)


def test_shed_suffix_in_the_policy_grammar(default_scenario, sizing):
    from autotune.errors import InputError
    from autotune.whatif import insurance

    cap_obj = sizing[0]
    with pytest.raises(InputError, match="POLICY\\+shed"):
        make_policy("+shed", default_scenario, cap_obj)
    pol = make_policy("hpa+crowd:3+shed", default_scenario, cap_obj)
    assert pol.name == "hpa+crowd:3+shed"
    assert insurance(["hpa+crowd:3+shed"]) == 3.0  # +crowd:K under +shed still brings the insured oracle
