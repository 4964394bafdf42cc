"""The ``predictive`` rule and the fleet-size capacity curve it (and every sizing rule) uses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autotune.core.types import Observation, PoolObs
from autotune.policies.predictive import MEMORY_S, history, make_predictive, margin, predict, record
from autotune.policies.sizing import replicas_for
from autotune.registry import make_policy
from autotune.scenario import load_scenario
from autotune.sim.capacity import fleet_capacity, measure_capacity, slo_capacity
from autotune.sim.run import simulate
from autotune.whatif import run_whatif
from autotune.workload.arrivals import build_arrivals
from tests.rl.helpers import short_arrivals


def _obs(t: float, rate: float) -> Observation:
    return Observation(t, 10.0, int(round(rate * 10)), int(round(rate * 10)), 0, 20.0, 30.0, 40.0, 1.0, 0,
                       (PoolObs("l4", 2, 0, 0, 0, 16, 1.0),))


def _replay(spec: str, rates: list[float]) -> list[int]:
    pol = make_policy(spec, load_scenario("default"))
    state = pol.initial_state()
    out = []
    for k, r in enumerate(rates):
        d, state = pol.decide(_obs(10.0 * k, r), state)
        out.append(d.replicas["l4"])
    json.dumps(state)  # the live controller persists it
    return out


def test_pooling_lets_a_replica_carry_more_within_the_slo_as_the_fleet_grows() -> None:
    sc = load_scenario("mixed-large")
    l4 = sc.runtime_pools()[0]
    carry = fleet_capacity(sc, l4, 1)
    per = [carry[n] / n for n in range(1, len(carry))]
    assert len(carry) == l4.spec.max_replicas + 1 and carry[0] == 0.0
    assert all(b >= a for a, b in zip(per, per[1:]))  # never less per replica in a bigger fleet
    assert per[0] < 0.5 * slo_capacity(sc, l4, 1) < per[-1]  # one L4 is far below the group-of-4 figure
    assert replicas_for(carry[3], carry) == 3 and replicas_for(carry[3] + 1, carry) == 4
    assert replicas_for(1e9, carry) == l4.spec.max_replicas  # beyond the quota: all of it


def test_predict_follows_a_trend_and_ignores_a_short_burst() -> None:
    ramp = [100.0 + 2.0 * k for k in range(30)]  # +2 req/s per window
    assert predict(ramp, 30, 15) == pytest.approx(158.0 + 30.0)  # the level now plus 15 windows of rise
    calm = [100.0] * 24 + [300.0] * 6  # a 1-minute 3x burst at the end of 5 minutes
    assert predict(calm, 30, 15) < 150.0  # the base load, not the burst
    steep = [10.0 * k for k in range(30)]  # level 290, slope 10: 15 windows would add 150
    assert predict(steep, 30, 15) == pytest.approx(1.5 * 290.0)  # the rise is capped at half the level


def test_record_scores_the_prediction_made_one_lead_ago_against_the_busiest_window_since() -> None:
    fit, lead = 4, 3
    rates = [100.0, 100.0, 100.0, 100.0, 250.0, 100.0, 100.0]
    # one lead ago the rates were [100] x 4: predicted 100; the busiest of the 3 windows since is 250
    assert record(rates, [], fit, lead, 10) == [250.0 / 100.0]
    assert record(rates[:lead], [1.0], fit, lead, 10) == [1.0]  # not a lead of history yet
    assert history(fit, lead) == 8  # a fit as of one lead ago, the lead, the current window
    assert margin([]) > 1.0 and margin([0.5, 0.6]) == 1.0  # default headroom at first; never below 1
    assert margin(list(np.linspace(1.0, 2.0, 101)), 0.95) == pytest.approx(1.95)


def test_steady_load_holds_no_whole_extra_gpu_but_bursts_are_held_and_then_forgotten() -> None:
    sc = load_scenario("default")
    carry = make_predictive(sc, measure_capacity(sc)).rule.totals["l4"]
    steady = [300.0 + (7.0 if k % 2 else -7.0) for k in range(90)]  # 15 min at 300 req/s with noise
    p, h = _replay("predictive", steady), _replay("headroom", steady)
    assert p[-1] == replicas_for(300.0 * 1.05, carry) < h[-1] == replicas_for(1.2 * 307.0, carry)
    calm, burst = [200.0] * 60, ([600.0] * 6 + [200.0] * 24) * 4  # 3x bursts of a minute every 5 minutes
    seen = _replay("predictive", calm + burst + [200.0] * 30)
    assert seen[-1] >= replicas_for(600.0, carry) > replicas_for(1.2 * 200.0, carry)  # holds a burst's worth
    forgotten = _replay("predictive", calm + burst + [200.0] * int(MEMORY_S / 10 + 60))
    assert forgotten[-1] <= replicas_for(1.1 * 200.0, carry)


def test_on_a_fast_daily_cycle_predictive_keeps_the_slo_that_headroom_misses_for_less_than_burst() -> None:
    sc = load_scenario("default")
    arr = short_arrivals(sc, "daily", 300.0, 1800.0, seed=3)  # a day in 30 minutes: steep ramps
    p, h, b = (simulate(sc, arr, make_policy(s, sc), 3).summary() for s in ("predictive", "headroom", "burst"))
    assert p["slo_attainment"] >= 0.99 > h["slo_attainment"]  # the trend leads the ramp by a start-up
    assert b["slo_attainment"] >= 0.99 and p["cost_usd"] < b["cost_usd"]


def test_oracle_meets_the_slo_on_mixed_large_at_low_load() -> None:
    """A single L4 carries a third of the group-of-4 figure within 50 ms: the oracle now sizes for that."""
    sc = load_scenario("mixed-large")
    arr = short_arrivals(sc, "poisson", 25.0, 600.0, seed=1)
    rows = run_whatif(sc, ["static"], 1, arrivals=arr).rows()
    assert rows[-1]["policy"] == "oracle" and rows[-1]["slo_attainment"] >= 0.99


def test_a_pool_that_starts_faster_than_the_cheapest_is_sized_for_its_own_shorter_lead() -> None:
    """A warm A100 pool (60 s to a node, not 300) is asked for closer to the load: the rule pays less at the
    same SLO. Where no pool starts faster than the cheapest, every pool keeps the cheapest pool's lead."""
    for name in ("default", "mixed", "mixed-large"):
        each = load_scenario(name)
        assert make_predictive(each, measure_capacity(each)).pool_leads == ()  # slower pools: unchanged
    sc = load_scenario("mixed-large")
    warm = sc.model_copy(update={"pools": [p.model_copy(update={"provision_s": 60.0}) if p.name == "a100" else p
                                           for p in sc.pools]})
    rule = make_predictive(warm, measure_capacity(warm))
    leads = dict(zip(rule.rule.order, rule.pool_leads, strict=True))
    assert leads["a100"] < leads["l4"] == rule.lead_windows
    arr = build_arrivals(warm, 0)
    res = simulate(warm, arr, rule, 0)
    own = res.summary()
    single = simulate(warm, arr, make_predictive(warm, measure_capacity(warm), per_pool_lead=False), 0).summary()
    assert own["cost_usd"] < 0.97 * single["cost_usd"]
    assert own["slo_attainment"] >= single["slo_attainment"] - 0.001
    state = rule.initial_state()  # the state a decision carries keeps the A100's own ratios
    for w in res.windows[:60]:
        if w.obs is not None:
            _, state = rule.decide(w.obs, state)
    assert set(state["lead_ratios"]) == {str(leads["a100"])} and state["lead_ratios"][str(leads["a100"])]
    json.dumps(state)
