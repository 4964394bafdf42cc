"""Capacity of fleets spread over several pools: one router pools them, so they carry more than apart."""

from __future__ import annotations

import pytest

from autotune.policies.oracle import rate_oracle
from autotune.policies.sizing import pooled_capacity
from autotune.registry import make_policy
from autotune.scenario import load_scenario
from autotune.sim.capacity import measure_capacity, measured_capacity
from autotune.workload.arrivals import build_arrivals


def test_pooled_capacity_of_one_pool_is_its_fleet_curve_and_same_gpu_pools_pool_as_one() -> None:
    sc = load_scenario("mixed-large")
    rule = make_policy("headroom", sc)
    totals, groups = rule.totals, rule.groups
    for n in range(1, 7):
        alone = pooled_capacity({"l4-spot": n, "l4": 0, "a100": 0}, totals, groups)
        assert alone == pytest.approx(totals["l4-spot"][n])
    # spot and on-demand L4s are the same GPU: 3 + 3 behind one router carry what 6 of one pool carry
    assert pooled_capacity({"l4-spot": 3, "l4": 3}, totals, groups) == pytest.approx(totals["l4-spot"][6])
    assert totals["l4-spot"][6] > totals["l4-spot"][3] + totals["l4"][3]
    # different GPUs add up, each group taken alone
    both = pooled_capacity({"l4-spot": 3, "l4": 3, "a100": 2}, totals, groups)
    assert both == pytest.approx(totals["l4-spot"][6] + totals["a100"][2])


@pytest.mark.parametrize("fleet", [{"l4-spot": 3, "l4": 3, "a100": 0}, {"l4-spot": 5, "l4": 1, "a100": 0}])
def test_same_gpu_pools_model_is_close_below_measured_and_closer_than_the_sum(fleet: dict[str, int]) -> None:
    sc = load_scenario("mixed-large")
    rule = make_policy("headroom", sc)
    pooled = pooled_capacity(fleet, rule.totals, rule.groups)
    alone = sum(rule.totals[name][n] for name, n in fleet.items())
    got = measured_capacity(sc, fleet, rule.batch, hi=2.0 * pooled)
    assert pooled <= 1.02 * got  # sizing by it does not overstate what the fleet keeps the SLO at
    assert got - pooled < 0.5 * (got - alone)  # and it recovers most of what summing the pools alone missed


def test_different_gpus_are_not_pooled_because_the_router_balances_queues_not_latency() -> None:
    # mixed: an A100 (64 ongoing, batch 16) beside an L4 carries less than the two apart; pooling
    # them as one fleet would overstate it more. mixed-large: an A100 beside L4s carries more.
    for name, fleet, below in (("mixed", {"l4-spot": 0, "l4": 1, "t4": 0, "a100": 1}, True),
                               ("mixed-large", {"l4-spot": 2, "l4": 1, "a100": 1}, False)):
        sc = load_scenario(name)
        rule = make_policy("headroom", sc)
        model = pooled_capacity(fleet, rule.totals, rule.groups)
        got = measured_capacity(sc, fleet, rule.batch, hi=2.0 * model)
        assert (got < model) == below, (name, got, model)
        # so sizing measures such a fleet instead of modelling it (capacity.MixedFleets)
        assert rule.mixed is not None
        assert pooled_capacity(fleet, rule.totals, rule.groups, rule.mixed, rule.batch) == got


def test_oracle_buys_fewer_gpus_on_mixed_large_when_same_gpu_pools_are_pooled() -> None:
    sc = load_scenario("mixed-large")
    arr = build_arrivals(sc, 0)
    plan = rate_oracle(sc, arr, measure_capacity(sc)).plan
    peak = max(plan, key=lambda d: (d.replicas["a100"], float(d.reason.split("peak ")[1].split(" ")[0])))
    assert peak.replicas["l4-spot"] == 6 and peak.replicas["a100"] >= 1  # past the spot quota, an A100 is bought
    rule = make_policy("headroom", sc)
    how = (rule.totals, rule.groups, rule.mixed, dict(peak.batch_size))
    rate = float(peak.reason.split("peak ")[1].split(" ")[0])
    have = pooled_capacity(peak.replicas, *how)
    one_less = pooled_capacity({**peak.replicas, "a100": peak.replicas["a100"] - 1}, *how)
    # the A100s it buys are the fewest that carry the peak with the L4s, as measured
    assert one_less < rate <= have + 1
    # the model (A100s added to the L4s) says that fleet falls short: measuring saved an A100 or an L4
    assert pooled_capacity(peak.replicas, rule.totals, rule.groups) < rate


def test_oracle_fleet_menu_finds_the_cheapest_fleet_a_brute_force_search_finds() -> None:
    import itertools

    from autotune.policies.oracle import cheapest_fleet, fleet_menu

    sc = load_scenario("mixed-large")
    rule = make_policy("headroom", sc)
    pools = sc.runtime_pools()
    totals = [rule.totals[p.name] for p in pools]
    menu = fleet_menu(pools, [1.0] * len(pools), totals, rule.groups)
    price = {p.name: p.price_per_hour for p in pools}
    fleets = [dict(zip([p.name for p in pools], c, strict=True)) for c in
              itertools.product(*[range(p.spec.min_replicas, p.spec.max_replicas + 1) for p in pools])]
    for rate in (5.0, 40.0, 150.0, 333.0, 420.0, 600.0):
        feasible = [f for f in fleets if pooled_capacity(f, rule.totals, rule.groups) >= rate - 1e-6]
        best = min(sum(n * price[k] for k, n in f.items()) for f in feasible)
        got = dict(zip([p.name for p in pools], cheapest_fleet(rate, menu, pools), strict=True))
        assert sum(n * price[k] for k, n in got.items()) == pytest.approx(best)
        assert pooled_capacity(got, rule.totals, rule.groups) >= rate - 1e-6
