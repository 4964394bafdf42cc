"""Dollars: billed per node from request to release, idle nodes until their timeout."""

from __future__ import annotations

import pytest

from autotune.core.types import Decision
from autotune.policies.static import StaticPolicy
from autotune.sim.cluster import ClusterSim
from autotune.sim.run import simulate
from tests.conftest import arrivals_at, tweak


def test_static_fleet_costs_replicas_times_price_times_time(default_scenario):
    sc = default_scenario
    price = sc.runtime_pools()[0].price_per_hour
    res = simulate(sc, arrivals_at([1.0, 2.0], 300.0), StaticPolicy({"l4": 2}, {"l4": 8}), seed=0)
    assert res.summary()["cost_usd"] == pytest.approx(2 * price * (300 + sc.drain_s) / 3600)
    assert res.summary()["gpu_hours"] == pytest.approx(2 * (300 + sc.drain_s) / 3600)


def test_scale_up_bills_from_node_request_and_scale_down_until_idle_timeout(default_scenario):
    sc = tweak(default_scenario, pool={"initial_replicas": 3}, node_idle_timeout_s=60.0)
    price = sc.runtime_pools()[0].price_per_hour
    sim = ClusterSim(sc, arrivals_at([], 1000.0), seed=0)
    sim.run_until(10.0)
    sim.apply(Decision({"l4": 1}, "down"))
    sim.run_until(500.0)
    sim.apply(Decision({"l4": 2}, "up"))  # no idle node left: a new one, billed while it boots
    sim.run_until(1000.0)
    sim.finish()
    node_seconds = 1000.0 + 2 * (10.0 + 60.0) + (1000.0 - 500.0)
    assert sim.total_cost() == pytest.approx(price * node_seconds / 3600)


def test_idle_node_is_reused_without_provisioning_delay(default_scenario):
    sc = tweak(default_scenario, pool={"initial_replicas": 2}, node_idle_timeout_s=60.0)
    p = sc.runtime_pools()[0]
    sim = ClusterSim(sc, arrivals_at([], 600.0), seed=0)
    sim.apply(Decision({"l4": 1}, "down"))
    sim.run_until(20.0)
    sim.apply(Decision({"l4": 2}, "up again"))
    w = sim.run_until(20.0 + p.load_s + 1)
    assert w.replicas["l4"]["running"] == 2  # only the model load, no node boot
    assert len(sim.nodes) == 2
