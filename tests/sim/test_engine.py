"""The event loop: determinism, conservation, batching semantics, queueing theory."""

from __future__ import annotations

import numpy as np
import pytest

from autotune.core.types import Decision
from autotune.policies.static import StaticPolicy
from autotune.registry import make_policy
from autotune.scenario import load_scenario
from autotune.sim import kernel as K
from autotune.sim.cluster import ClusterSim, SimConfig
from autotune.sim.run import simulate
from autotune.workload.arrivals import TraceOptions, build_arrivals
from tests.conftest import arrivals_at, tweak


def _short(sc, seconds=300.0, rate=None):
    return build_arrivals(sc, 3, TraceOptions(duration_s=seconds, mean_rate=rate))


def test_same_seed_same_result_different_seed_differs(default_scenario):
    sc = default_scenario
    arr = _short(sc)
    a = simulate(sc, arr, make_policy("ray-default", sc), seed=5)
    b = simulate(sc, arr, make_policy("ray-default", sc), seed=5)
    c = simulate(sc, arr, make_policy("ray-default", sc), seed=6)
    assert np.array_equal(a.sim.finish_t, b.sim.finish_t, equal_nan=True)
    assert a.summary() == b.summary()
    assert not np.array_equal(a.sim.finish_t, c.sim.finish_t, equal_nan=True)
    assert np.array_equal(build_arrivals(sc, 9).times, build_arrivals(sc, 9).times)
    assert not np.array_equal(build_arrivals(sc, 9).times[:100], build_arrivals(sc, 10).times[:100])


def test_two_simulators_in_one_process_do_not_share_state(default_scenario):
    """Interleaving two instances step by step gives what each gives alone (no globals)."""
    sc = default_scenario
    arr = _short(sc, 120)
    alone = simulate(sc, arr, StaticPolicy({"l4": 3}, {"l4": 8}), seed=1)
    s1, s2 = ClusterSim(sc, arr, 1), ClusterSim(sc, arr, 2)
    for s in (s1, s2):
        s.apply(Decision({"l4": 3}, "test", {"l4": 8}), warm=True)
    t = 0.0
    while t < arr.duration_s + sc.drain_s:
        t += sc.control_interval_s
        s1.run_until(t)
        s2.run_until(t)
    s1.finish()
    assert np.array_equal(s1.finish_t, alone.sim.finish_t, equal_nan=True)


@pytest.mark.parametrize("scenario", ["default", "mixed"])
def test_conservation_every_request_finishes_or_is_dropped(scenario):
    sc = load_scenario(scenario)
    if scenario == "mixed":  # make preemptions certain, so killed replicas drop requests
        data = sc.model_dump()
        data["pools"][0]["preemption_rate_per_hour"] = 60.0
        data["pools"][0]["initial_replicas"] = 4
        data["spot_warning_s"] = 0.0  # killed at once: whatever a replica holds is lost
        sc = type(sc).model_validate(data)
    arr = _short(sc, 600)
    res = simulate(sc, arr, make_policy("ray-default", sc), seed=2)
    st = res.sim.status
    assert np.all((st == K.DONE) | (st == K.DROPPED))
    done = st == K.DONE
    assert np.all(res.sim.finish_t[done] >= res.sim.start_t[done])
    assert np.all(res.sim.start_t[done] >= res.sim.arr_t[done])
    summary = res.summary()
    assert summary["dropped"] + int(done.sum()) == summary["requests"] == len(arr)
    if scenario == "mixed":
        assert sum(w.obs.pools[0].preemptions for w in res.windows) > 0
        assert summary["dropped"] > 0


def test_router_queue_cap_drops_excess(default_scenario):
    sc = tweak(default_scenario, max_queued_requests=10)
    arr = _short(sc, 120, rate=2000)  # far beyond 2 replicas
    res = simulate(sc, arr, StaticPolicy({"l4": 1}, {"l4": 8}), seed=0)
    s = res.summary()
    assert s["dropped"] > 0
    assert s["dropped"] + int(np.sum(res.sim.status == K.DONE)) == len(arr)


def _one_replica(batch: int, timeout: float, times: list[float], max_ongoing: int = 64):
    sizes = sorted({1, 2, 4, 8, batch} & set(range(1, max_ongoing + 1)))
    sc = tweak(load_scenario("default"), pool={"batch_sizes": sizes, "batch_size": batch,
                                               "batch_wait_timeout_s": timeout, "max_ongoing_requests": max_ongoing,
                                               "initial_replicas": 1}, proxy_overhead_ms=0.0)
    sim = ClusterSim(sc, arrivals_at(times, 5.0), seed=0)
    sim.pf[:, K.NOISE_SIGMA] = 0.0
    pool = sc.runtime_pools()[0]
    sim.run_until(5.0)
    return sim, pool


def test_batch_starts_at_timeout_when_not_full():
    sim, p = _one_replica(batch=4, timeout=0.010, times=[0.0, 0.001, 0.002])
    assert np.allclose(sim.start_t, 0.010)
    assert np.allclose(sim.finish_t, 0.010 + p.batch_ms(3) / 1e3)


def test_batch_closes_when_full_and_the_next_one_forms_while_the_gpu_is_busy():
    sim, p = _one_replica(batch=4, timeout=0.010, times=[0.0, 0.001, 0.002, 0.003, 0.004])
    assert np.allclose(sim.start_t[:4], 0.003)
    end1 = 0.003 + p.batch_ms(4) / 1e3
    assert np.allclose(sim.finish_t[:4], end1)
    # Ray 2.60's batcher does not wait for the GPU: the fifth request opens a batch at
    # 0.004 that closes at 0.014 and then waits for the first batch to finish.
    assert end1 > 0.014
    assert sim.start_t[4] == pytest.approx(end1)
    assert sim.finish_t[4] == pytest.approx(end1 + p.batch_ms(1) / 1e3)


def test_steady_load_queues_small_batches_instead_of_filling_them():
    """With no wait, each request that finds the batcher idle is its own batch (as measured on Ray Serve)."""
    t = [0.0] + [0.001 * k for k in range(1, 6)]  # 1 then 5 more during the first batch
    sim, p = _one_replica(batch=4, timeout=0.0, times=t)
    d1 = p.batch_ms(1) / 1e3
    assert sim.start_t == pytest.approx([k * d1 for k in range(6)])
    assert sim.acc[0, K.BATCHES] == 6


def test_requests_that_arrive_together_share_a_batch():
    sim, p = _one_replica(batch=4, timeout=0.005, times=[0.0, 0.001, 0.002, 0.003, 0.0031, 0.0032])
    end1 = 0.003 + p.batch_ms(4) / 1e3
    assert sim.start_t[4] == pytest.approx(end1) and sim.start_t[5] == pytest.approx(end1)
    assert sim.acc[0, K.BATCHES] == 2


def test_max_ongoing_holds_requests_in_the_router():
    sim, p = _one_replica(batch=1, timeout=0.0, times=[0.0, 0.0001, 0.0002], max_ongoing=1)
    d = p.batch_ms(1) / 1e3
    assert sim.start_t == pytest.approx([0.0, d, 2 * d])


def test_md1_waiting_time_matches_pollaczek_khinchine():
    """One replica, batch 1, no timeout, no noise: an M/D/1 queue."""
    sc = tweak(load_scenario("default"), pool={"batch_sizes": [1], "batch_size": 1, "batch_wait_timeout_s": 0.0,
                                               "max_ongoing_requests": 100000, "initial_replicas": 1,
                                               "min_replicas": 1, "max_replicas": 1}, proxy_overhead_ms=0.0)
    p = sc.runtime_pools()[0]
    d = p.batch_ms(1) / 1e3
    rho = 0.5
    rng = np.random.default_rng(0)
    duration = 4000.0
    t = np.cumsum(rng.exponential(d / rho, int(duration * rho / d)))
    t = t[t < duration]
    sim = ClusterSim(sc, arrivals_at(t, duration), seed=0)
    sim.pf[:, K.NOISE_SIGMA] = 0.0
    sim.run_until(duration + 60)
    wait = (sim.start_t - sim.arr_t).mean()
    expected = rho * d / (2 * (1 - rho))
    assert wait == pytest.approx(expected, rel=0.06)


def test_mmc_more_replicas_less_waiting_and_balanced_routing(default_scenario):
    sc = tweak(default_scenario, pool={"batch_sizes": [1], "batch_size": 1, "batch_wait_timeout_s": 0.0})
    arr = _short(sc, 300, rate=150)
    waits = {}
    for n in (2, 4):
        res = simulate(sc, arr, StaticPolicy({"l4": n}, {"l4": 1}), seed=0)
        waits[n] = float(np.nanmean(res.sim.start_t - res.sim.arr_t))
    assert waits[4] < waits[2]


def test_scale_up_waits_for_node_and_model_load(default_scenario):
    sc = default_scenario
    p = sc.runtime_pools()[0]
    sim = ClusterSim(sc, arrivals_at([], 600.0), seed=0)
    sim.apply(Decision({"l4": 3}, "up"))
    w = sim.run_until(p.provision_s - 1)
    assert w.replicas["l4"] == {"pending": 1, "starting": 0, "running": 2, "draining": 0}
    w = sim.run_until(p.provision_s + 1)
    assert w.replicas["l4"]["starting"] == 1
    w = sim.run_until(p.provision_s + p.load_s + 1)
    assert w.replicas["l4"]["running"] == 3


def test_oracle_config_starts_instantly(default_scenario):
    sim = ClusterSim(default_scenario, arrivals_at([], 60.0), seed=0, config=SimConfig(instant_start=True))
    sim.apply(Decision({"l4": 5}, "up"))
    assert sim.counts()["l4"]["running"] == 5


def test_proxy_overhead_delays_routing_and_counts_in_latency():
    sc = tweak(load_scenario("default"), pool={"batch_wait_timeout_s": 0.0, "initial_replicas": 1},
               proxy_overhead_ms=2.0)
    sim = ClusterSim(sc, arrivals_at([1.0], 5.0), seed=0)
    sim.pf[:, K.NOISE_SIGMA] = 0.0
    w = sim.run_until(5.0)
    p = sc.runtime_pools()[0]
    assert sim.start_t[0] == pytest.approx(1.002)
    assert w.latency_ms[0] == pytest.approx(2.0 + p.batch_ms(1))


def test_growing_the_slot_arrays_mid_run_changes_nothing(default_scenario):
    sc = default_scenario
    arr = _short(sc, 120)

    def run(grow: bool) -> np.ndarray:
        sim = ClusterSim(sc, arr, seed=3)
        sim.apply(Decision({"l4": 4}, "up"), warm=True)
        sim.run_until(60.0)
        if grow:
            sim._alloc_slots(sim.rf.shape[0] * 2)
        sim.apply(Decision({"l4": 6}, "up"))
        sim.run_until(arr.duration_s + 30)
        return sim.finish_t

    assert np.array_equal(run(False), run(True), equal_nan=True)
