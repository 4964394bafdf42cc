"""``ray-default``: Ray Serve 2.60's default autoscaling policy, as a pure function.

Mirrors ``ray.serve.autoscaling_policy``: the core rule
(``_core_replica_queue_length_policy``), the cold-start path, scaling factors
(``_apply_scaling_factors``), the delay logic (``_apply_delay_logic``) and the
bounds (``AutoscalingState.apply_bounds``), each a small function here applied
in Ray's order. Ray reads ``time.time()`` inside its delay logic; here time
comes from the observation, so a simulated day replays exactly.

``total_num_requests`` is what Ray averages over ``look_back_period_s``:
requests at the replicas plus those queued at handles. The simulator reports
one average per control window; the policy keeps the recent windows in its
state and averages those that fall within the look-back period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autotune.core.types import Decision, Observation, PolicyState
from autotune.scenario import PoolSpec, RayAutoscalerSpec

COUNTER_KEY = "__decision_counters"  # ray.serve._private.constants names
TIMESTAMP_KEY = "__decision_timestamp"
_EPS = 1e-6  # ray's _DELAY_ELAPSED_EPS_S


def core_desired(total_requests: float, running: int, target: int, cfg: RayAutoscalerSpec) -> float:
    if running == 0:
        return target
    return running * (total_requests / (cfg.target_ongoing_requests * running))


def cold_start(total_requests: float, running: int, target: int, cfg: RayAutoscalerSpec) -> int | None:
    if running == 0 and total_requests > 0:
        return max(math.ceil(1 * (cfg.upscaling_factor or 1.0)), target)
    return None


def scaling_factors(desired: float, running: int, cfg: RayAutoscalerSpec) -> int:
    if running == 0:
        return math.ceil(desired)
    delta = desired - running
    factor = (cfg.upscaling_factor or 1.0) if delta > 0 else (cfg.downscaling_factor or 1.0)
    scaled = math.ceil(running + factor * delta)
    if math.ceil(float(desired)) < running and scaled == running:
        scaled -= 1
    return scaled


def delay(desired: int, target: int, cfg: RayAutoscalerSpec, state: dict, now: float) -> tuple[int, dict]:
    out = target
    counter = state.get(COUNTER_KEY, 0)
    stamp = state.get(TIMESTAMP_KEY)
    if desired > target:
        if counter < 0:
            counter, stamp = 0, None
        counter += 1
        if stamp is None:
            stamp = now
        if now - stamp + _EPS >= cfg.upscale_delay_s:
            counter, stamp, out = 0, None, desired
    elif desired < target:
        if counter > 0:
            counter, stamp = 0, None
        counter -= 1
        if target != 1:
            desired = max(1, desired)
        if stamp is None:
            stamp = now
        if now - stamp + _EPS >= cfg.downscale_delay_s:
            counter, stamp, out = 0, None, desired
    else:
        counter, stamp = 0, None
    return out, {COUNTER_KEY: counter, TIMESTAMP_KEY: stamp}


def bounds(n: int, pool: PoolSpec) -> int:
    return max(pool.min_replicas, min(pool.max_replicas, n))


def ray_decide(total_requests: float, running: int, target: int, cfg: RayAutoscalerSpec, pool: PoolSpec,
               state: dict, now: float) -> tuple[int, dict, str]:
    """One deployment's decision, exactly as Ray Serve 2.60 computes it."""
    cold = cold_start(total_requests, running, target, cfg)
    if cold is not None:
        return bounds(cold, pool), state, "cold start"
    desired = scaling_factors(core_desired(total_requests, running, target, cfg), running, cfg)
    if running == 0 and desired > 0:
        return bounds(desired, pool), state, "scale from zero"
    out, new_state = delay(max(0, desired), target, cfg, state, now)
    if out != target:
        why = f"{total_requests:.1f} requests vs target {cfg.target_ongoing_requests:g}/replica"
    elif desired != target:
        why = "waiting out the " + ("upscale" if desired > target else "downscale") + " delay"
    else:
        why = "at target"
    return bounds(out, pool), new_state, why


@dataclass(frozen=True)
class RayDefaultPolicy:
    pools: tuple[PoolSpec, ...]
    config: RayAutoscalerSpec
    name: str = "ray-default"
    # Ray Serve's autoscaler acts without autotune's guards: simulated as it runs on its own (bounds alone).
    guarded: bool = False

    def initial_state(self) -> PolicyState:
        return {"history": [], "pools": {p.name: {} for p in self.pools}}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        sample = {p.name: p.total_requests for p in obs.pools}
        history = [h for h in state["history"] if obs.time_s - h[0] < self.config.look_back_period_s - 1e-9]
        history.append((obs.time_s, obs.window_s, sample))
        replicas: dict[str, int] = {}
        reasons: list[str] = []
        pool_states = dict(state["pools"])
        for spec in self.pools:
            p = obs.pool(spec.name)
            weight = sum(h[1] for h in history)
            total = sum(h[1] * h[2][spec.name] for h in history) / weight if weight else 0.0
            n, pool_states[spec.name], why = ray_decide(total, p.running, p.target, self.config, spec,
                                                        dict(state["pools"].get(spec.name, {})), obs.time_s)
            replicas[spec.name] = n
            reasons.append(f"{spec.name}: {why}")
        return Decision(replicas, "; ".join(reasons)), {"history": history, "pools": pool_states}
