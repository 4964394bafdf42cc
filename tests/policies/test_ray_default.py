"""ray-default makes Ray Serve 2.60's decisions, checked against Ray's own function."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autotune.core.types import Observation, PoolObs
from autotune.policies.ray_default import RayDefaultPolicy, ray_decide
from autotune.scenario import PoolSpec, RayAutoscalerSpec

ray_policy = pytest.importorskip("ray.serve.autoscaling_policy")
from ray.serve._private.common import DeploymentID  # noqa: E402
from ray.serve.config import AutoscalingConfig, AutoscalingContext  # noqa: E402

POOL = PoolSpec(name="l4", instance="L4", min_replicas=1, max_replicas=20, batch_sizes=[8], batch_size=8,
                batch_wait_timeout_s=0.0, max_ongoing_requests=16)


def _ray_decision(monkeypatch, cfg: AutoscalingConfig, total: float, running: int, target: int,
                  state: dict, now: float) -> tuple[int, dict]:
    monkeypatch.setattr(ray_policy.time, "time", lambda: now)  # Ray reads the wall clock inside
    ctx = AutoscalingContext(
        deployment_id=DeploymentID(name="l4", app_name="app"), deployment_name="l4", app_name="app",
        current_num_replicas=running, target_num_replicas=target, running_replicas=[],
        total_num_requests=total, total_queued_requests=0.0, aggregated_metrics={}, raw_metrics={},
        capacity_adjusted_min_replicas=cfg.min_replicas, capacity_adjusted_max_replicas=cfg.max_replicas,
        policy_state=state, last_scale_up_time=None, last_scale_down_time=None, current_time=now, config=cfg,
    )
    wrapped = ray_policy._apply_autoscaling_config(ray_policy.replica_queue_length_autoscaling_policy)
    n, new_state = wrapped(ctx)
    if isinstance(n, float):
        n = math.ceil(n)
    return max(cfg.min_replicas, min(cfg.max_replicas, n)), new_state


@pytest.mark.parametrize("knobs", [
    {},
    {"target_ongoing_requests": 5.0, "upscale_delay_s": 0.0, "downscale_delay_s": 20.0},
    {"upscaling_factor": 2.0, "downscaling_factor": 0.5, "upscale_delay_s": 10.0, "downscale_delay_s": 60.0},
])
def test_same_decisions_as_ray_on_random_contexts(monkeypatch, knobs):
    ours = RayAutoscalerSpec(**knobs)
    ray_cfg = AutoscalingConfig(min_replicas=POOL.min_replicas, max_replicas=POOL.max_replicas, **knobs)
    rng = np.random.default_rng(0)
    ray_state: dict = {}
    our_state: dict = {}
    target = 3
    now = 1_000.0
    mismatches = []
    for tick in range(400):
        now += float(rng.choice([0.1, 1.0, 5.0, 10.0]))
        running = int(rng.integers(0, target + 1)) if rng.random() < 0.2 else target
        total = float(rng.choice([0.0, rng.uniform(0, 3), rng.uniform(0, 60)]))
        theirs, ray_state = _ray_decision(monkeypatch, ray_cfg, total, running, target, dict(ray_state), now)
        mine, our_state, _ = ray_decide(total, running, target, ours, POOL, dict(our_state), now)
        if mine != theirs:
            mismatches.append((tick, total, running, target, mine, theirs))
        target = theirs
    assert not mismatches, mismatches[:5]


def _obs(t: float, running: int, ongoing: float) -> Observation:
    pool = PoolObs("l4", running, 0, 0, 0, 8, ongoing)
    return Observation(t, 10.0, 100, 100, 0, 1.0, 2.0, 3.0, 1.0, 0, (pool,))


def test_policy_averages_over_the_look_back_period_and_waits_out_the_upscale_delay():
    pol = RayDefaultPolicy((POOL,), RayAutoscalerSpec(upscale_delay_s=30.0, look_back_period_s=30.0))
    state = pol.initial_state()
    d, state = pol.decide(_obs(10, 2, 4.0), state)  # exactly on target: 2 per replica
    assert d.replicas["l4"] == 2
    d, state = pol.decide(_obs(20, 2, 16.0), state)  # mean (4+16)/2 = 10 -> wants 5, starts the delay
    assert d.replicas["l4"] == 2 and "delay" in d.reason
    d, state = pol.decide(_obs(30, 2, 16.0), state)
    assert d.replicas["l4"] == 2
    d, state = pol.decide(_obs(50, 2, 16.0), state)  # 30 s after the first wish: acts
    assert d.replicas["l4"] == 8
