"""Scenario files: per-pool overrides of the catalog."""

from __future__ import annotations

import pytest

from autotune.scenario import load_scenario


def test_a_pool_can_override_node_provisioning() -> None:
    """live-demo's fake GPUs are already up: provision_s 0 there, the catalog's 120 s for a cloud L4."""
    (live,) = load_scenario("live-demo").runtime_pools()
    (cloud,) = load_scenario("default").runtime_pools()
    assert live.provision_s == 0.0 and cloud.provision_s == 120.0
    assert live.batch_ms(1) == pytest.approx(20 * cloud.batch_ms(1))  # vit-base-x20 is vit-base slowed 20x
