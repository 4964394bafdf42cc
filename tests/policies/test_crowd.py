"""``POLICY+crowd:K`` (``autotune.policies.crowd``): a floor under any policy's fleet."""

from __future__ import annotations

import json

import pytest

from autotune.core.types import Observation, PoolObs
from autotune.errors import InputError
from autotune.policies.crowd import calm_load
from autotune.registry import make_policy
from autotune.scenario import load_scenario


def _obs(t: float, rate: float, running: dict[str, int]) -> Observation:
    pools = tuple(PoolObs(n, running=k, starting=0, pending=0, draining=0, batch_size=8, ongoing_requests=1.0)
                  for n, k in running.items())
    return Observation(time_s=t, window_s=10.0, arrivals=int(rate * 10), completed=int(rate * 10), dropped=0,
                       p50_ms=20.0, p95_ms=30.0, p99_ms=40.0, slo_attainment=1.0, queued_requests=0, pools=pools)


def test_the_calm_load_is_what_short_bursts_return_to() -> None:
    assert calm_load([]) == 0.0
    assert calm_load([100.0] * 45 + [300.0] * 15) == 100.0  # a burst a quarter of the memory does not move it


def test_the_floor_raises_a_small_fleet_and_leaves_a_large_one_alone() -> None:
    sc = load_scenario("default")
    small = make_policy("static:1+crowd:2.5", sc)
    assert small.name == "static:1+crowd:2.5"
    state = small.initial_state()
    for k in range(3):
        decision, state = small.decide(_obs(10.0 * (k + 1), 300.0, {"l4": 1}), state)
    # 2.5 x 300 req/s = 750 req/s: five L4s carry 896 within the SLO, four 712 (the capacity model)
    assert decision.replicas == {"l4": 5}
    assert "crowd floor: 2.5x calm 300 req/s = 750 req/s -> l4: 5" in decision.reason
    json.dumps(state)  # the live controller keeps it as plain data
    large = make_policy("static:8+crowd:2.5", sc)
    inner = make_policy("static:8", sc)
    got, _ = large.decide(_obs(10.0, 300.0, {"l4": 8}), large.initial_state())
    want, _ = inner.decide(_obs(10.0, 300.0, {"l4": 8}), inner.initial_state())
    assert got == want


def test_the_floor_spills_to_the_next_pool_at_a_quota() -> None:
    sc = load_scenario("mixed-large")
    pol = make_policy("predictive+crowd:3", sc)
    decision, _ = pol.decide(_obs(10.0, 250.0, {"l4-spot": 2, "l4": 1, "a100": 0}), pol.initial_state())
    assert decision.replicas["l4-spot"] == 6 and decision.replicas["l4"] == 3  # both L4 quotas, then the A100
    assert decision.replicas["a100"] >= 1


@pytest.mark.parametrize("spec", ["predictive+crowd:0.5", "predictive+crowd:x", "+crowd:2", "nope+crowd:2",
                                  "predictive+hold:0", "+hold:3", "predictive+crowd:3+hold:x"])
def test_a_bad_crowd_floor_is_a_one_line_error(spec: str) -> None:
    with pytest.raises(InputError) as e:
        make_policy(spec, load_scenario("default"))
    assert "\n" not in str(e.value) and "--policy" in str(e.value)


def test_hold_keeps_the_floors_fleet_while_it_carries_the_load_and_follows_the_policy_past_it() -> None:
    sc = load_scenario("default")
    stack, hold = make_policy("static:24+crowd:3", sc), make_policy("static:24+hold:3", sc)
    assert hold.name == "static:24+hold:3" and make_policy("predictive+crowd:2+hold:3", sc).name.endswith("+hold:3")
    s_stack, s_hold = stack.initial_state(), hold.initial_state()
    for k in range(60):  # ten calm minutes at 300 req/s, then a 3x crowd, then 4x
        rate = 300.0 if k < 58 else (900.0 if k == 58 else 1200.0)
        stacked, s_stack = stack.decide(_obs(10.0 * (k + 1), rate, {"l4": 24}), s_stack)
        held, s_hold = hold.decide(_obs(10.0 * (k + 1), rate, {"l4": 24}), s_hold)
        if k == 57:  # calm: the floor's 6 L4s (3 x 300 req/s needs 899; five carry 896), not the policy's 24
            assert stacked.replicas == {"l4": 24} and held.replicas == {"l4": 6}
            assert "hold the floor: 3x calm 300 req/s" in held.reason
        if k == 58:  # the 3x crowd is what the floor was bought for: it carries it
            assert held.replicas == {"l4": 6}
    # a 4x surge outgrows the floor's fleet: the policy's decision stands, as under +crowd:K
    assert held == stacked and held.replicas == {"l4": 24}
    json.dumps(s_hold)


def test_hold_pays_less_than_stacking_the_rule_on_the_floor_on_a_bursty_hour_and_keeps_the_slo() -> None:
    from autotune.rl.evaluation import MMPP_PARAMS, WARMUP_S, slo_after
    from autotune.scenario import WorkloadSpec
    from autotune.sim.run import simulate
    from autotune.workload.arrivals import build_arrivals

    spec = WorkloadSpec(kind="synthetic", generator="mmpp", mean_rate=300.0, duration_s=1800.0, params=MMPP_PARAMS)
    sc = load_scenario("default").model_copy(update={"workload": spec})
    arr = build_arrivals(sc, 5201)  # a burst-scan hour (bench/burst_scan.py seeds 5200+)
    names = ("predictive+crowd:3", "predictive+hold:3")
    runs = {name: simulate(sc, arr, make_policy(name, sc), 5201) for name in names}
    cost = {name: float(r.summary()["cost_usd"]) for name, r in runs.items()}
    assert slo_after(runs["predictive+hold:3"], WARMUP_S) >= 0.99
    assert cost["predictive+hold:3"] < 0.9 * cost["predictive+crowd:3"]
