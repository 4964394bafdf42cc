"""The ``burst`` rule: headroom sized by the largest recent burst, and ``headroom``'s spill-over."""

from __future__ import annotations

import math

from autotune.core.types import Observation, PoolObs
from autotune.policies.burst import MEMORY_S
from autotune.policies.sizing import capacity_table, pooled_capacity
from autotune.registry import make_policy
from autotune.scenario import load_scenario
from autotune.sim.capacity import measure_capacity


def _obs(t: float, rate: float) -> Observation:
    pool = PoolObs("l4", 4, 0, 0, 0, 8, 1.0)
    return Observation(t, 10.0, int(rate * 10), int(rate * 10), 0, 20.0, 30.0, 40.0, 1.0, 0, (pool,))


def _replay(spec: str, rates: list[float]) -> list[int]:
    sc = load_scenario("default")
    pol = make_policy(spec, sc)
    state = pol.initial_state()
    out = []
    for k, r in enumerate(rates):
        d, state = pol.decide(_obs(10.0 * k, r), state)
        out.append(d.replicas["l4"])
    return out


def test_burst_holds_the_last_bursts_size_through_the_calm_and_then_forgets() -> None:
    sc = load_scenario("default")
    cap = max(capacity_table(measure_capacity(sc), sc)["l4"].values())
    calm, burst = [100.0] * 60, [300.0] * 6  # 10 min calm, a 1-minute 3x burst
    after = [100.0] * 60
    rates = calm + burst + after
    b, h = _replay("burst", rates), _replay("headroom", rates)
    assert b[:60] == h[:60]  # smooth load: the same as headroom
    want = math.ceil(1.2 * 300 / cap - 1e-6)
    assert b[-1] == want > h[-1] == math.ceil(1.2 * 100 / cap - 1e-6)  # 10 min on, still sized for the burst
    forgotten = _replay("burst", rates + [100.0] * int(MEMORY_S / 10))
    assert forgotten[-1] == h[-1]  # half an hour later the burst is forgotten


def test_headroom_spills_past_the_cheapest_pools_quota_in_price_order() -> None:
    sc = load_scenario("mixed-large")
    pol = make_policy("headroom", sc)
    carry = pol.totals  # req/s n replicas carry within the SLO, by n
    assert pol.order == ("l4-spot", "l4", "a100")  # by dollars per req/s of SLO capacity
    state = pol.initial_state()
    obs = Observation(0.0, 10.0, 5000, 5000, 0, 20.0, 30.0, 40.0, 1.0, 0, ())
    d, _ = pol.decide(obs, state)  # 500 req/s: x1.2 = 600 req/s of SLO capacity
    assert d.replicas["l4-spot"] == 6 and d.replicas["l4"] == 3
    n = d.replicas["a100"]
    # the fewest A100s at which the whole fleet, L4s and A100s behind one router, carries 600 req/s as measured
    g, m, b = pol.groups, pol.mixed, pol.batch
    assert m is not None
    assert pooled_capacity({**d.replicas, "a100": n - 1}, carry, g, m, b) < 600 <= pooled_capacity(d.replicas, carry,
                                                                                                   g, m, b)
    # The model (spot and on-demand L4s pooled, the A100s added) would have bought one more: an A100 beside L4s
    # carries more than alone (the router sends it the overflow of the L4s' short queues).
    model = next(k for k in range(5) if pooled_capacity({**d.replicas, "a100": k}, carry, g) >= 600)
    assert n == model - 1
    # and adding every pool up, more still
    alone = 600 - carry["l4-spot"][6] - carry["l4"][3]
    assert model <= next(k for k, c in enumerate(carry["a100"]) if c >= alone)
    assert "a100" in d.reason
