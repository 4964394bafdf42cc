"""The in-Serve adapter, called with Ray Serve's own AutoscalingContext (fast)."""

from __future__ import annotations

import pytest

from autotune.errors import InputError
from autotune.live.ray_policy import AutotunePolicy


def _ctx(total: float, running: int, t: float, target: int | None = None):
    from ray.serve._private.common import DeploymentID
    from ray.serve.config import AutoscalingConfig, AutoscalingContext

    return AutoscalingContext(
        deployment_id=DeploymentID(name="l4", app_name="app"), deployment_name="l4", app_name="app",
        current_num_replicas=running, target_num_replicas=target if target is not None else running,
        running_replicas=[], total_num_requests=total, total_queued_requests=0.0, aggregated_metrics=None,
        raw_metrics=None, capacity_adjusted_min_replicas=1, capacity_adjusted_max_replicas=6, policy_state={},
        last_scale_up_time=None, last_scale_down_time=None, current_time=t,
        config=AutoscalingConfig(min_replicas=1, max_replicas=6))


def test_hpa_inside_serve_scales_on_ongoing_requests_at_the_control_interval() -> None:
    pol = AutotunePolicy("live-demo", "hpa", "l4")  # target 4 ongoing per replica, interval 5 s
    n, state = pol(_ctx(total=24.0, running=2, t=100.0))
    assert n == 6 and state == {}
    # Within the interval: the last decision is repeated, whatever the metric says.
    assert pol(_ctx(total=0.0, running=6, t=102.0))[0] == 6
    assert pol(_ctx(total=400.0, running=6, t=105.0))[0] == 8  # max_replicas


def test_bad_pool_or_policy_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no pool"):
        AutotunePolicy("live-demo", "hpa", "a100")
    with pytest.raises(InputError, match="unknown policy"):
        AutotunePolicy("live-demo", "nope", "l4")
