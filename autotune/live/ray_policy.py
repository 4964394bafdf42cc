"""Run an autotune policy inside Ray Serve's own autoscaler (replicas only).

Use it as a deployment's custom autoscaling policy::

    autoscaling_config:
      min_replicas: 1
      max_replicas: 6
      upscale_delay_s: 0      # the policy has its own timing rules;
      downscale_delay_s: 0    # Ray applies these delays on top of any custom policy
      policy:
        policy_function: autotune.live.ray_policy:AutotunePolicy
        policy_kwargs: {scenario: live-demo, policy: hpa, pool: l4}

Serve instantiates the class once per deployment with ``policy_kwargs`` and
calls it every control-loop tick (about 0.1 s) with an ``AutoscalingContext``.
The adapter re-decides once per scenario ``control_interval_s`` (the cadence
the policy was built or trained for) and repeats that decision in between.

What Serve's context does not carry stays unknown to the policy: arrivals,
latency percentiles and SLO attainment are reported as 0/NaN, batch size as
the scenario's. Policies built on ongoing requests (``hpa``, ``ray-default``,
``static``) see all they need; a trained policy that reads latency is better
run by ``autotune control``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from autotune.core.types import Decision, Observation, PoolObs
from autotune.errors import InputError
from autotune.registry import make_policy
from autotune.scenario import load_scenario


def observation_from_context(ctx: Any, pool: str, batch_size: int, now: float, window_s: float) -> Observation:
    """Serve's ``AutoscalingContext`` → a one-pool :class:`Observation`."""
    total = float(ctx.total_num_requests or 0.0)
    queued = float(ctx.total_queued_requests or 0.0) if ctx.total_queued_requests is not None else 0.0
    running = int(ctx.current_num_replicas)
    starting = max(0, int(ctx.target_num_replicas) - running)
    p = PoolObs(name=pool, running=running, starting=starting, pending=0, draining=0, batch_size=batch_size,
                ongoing_requests=max(0.0, total - queued), queued_requests=queued)
    nan = math.nan
    return Observation(time_s=now, window_s=window_s, arrivals=0, completed=0, dropped=0, p50_ms=nan, p95_ms=nan,
                       p99_ms=nan, slo_attainment=nan, queued_requests=int(round(queued)), pools=(p,))


class AutotunePolicy:
    """A class-callable Serve autoscaling policy wrapping ``make_policy(policy, scenario)`` for one pool."""

    def __init__(self, scenario: str, policy: str, pool: str) -> None:
        sc = load_scenario(scenario)
        spec = next((p for p in sc.pools if p.name == pool), None)
        if spec is None:
            raise InputError(scenario, "pools", f"no pool {pool!r} (have {', '.join(p.name for p in sc.pools)})")
        # The policy sees a one-pool scenario: Serve calls us per deployment.
        self.scenario = sc.model_copy(update={"pools": [spec]})
        self.spec = spec
        self.policy = make_policy(policy, self.scenario)
        self.state = self.policy.initial_state()
        self.interval_s = sc.control_interval_s
        self.last_t: float | None = None
        self.last: Decision | None = None

    def __call__(self, ctx: Any) -> tuple[int, dict[str, Any]]:
        now = float(ctx.current_time if ctx.current_time is not None else time.time())
        if self.last is None or self.last_t is None or now - self.last_t >= self.interval_s - 1e-6:
            window = self.interval_s if self.last_t is None else now - self.last_t
            obs = observation_from_context(ctx, self.spec.name, self.spec.batch_size, now, window)
            self.last, self.state = self.policy.decide(obs, self.state)
            self.last_t = now
        n = int(self.last.replicas.get(self.spec.name, ctx.target_num_replicas))
        n = max(self.spec.min_replicas, min(self.spec.max_replicas, n))
        return n, dict(ctx.policy_state or {})
