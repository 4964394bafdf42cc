"""The simulator, the gym env and the live controller share one decision path (``autotune.core.step``).

The same observations fed through the simulator's loop, the live controller's
``decide`` and the gym env's ``step`` give the same applied decisions, guards
included, so a what-if replays what ``autotune control`` would do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autotune.core import LIVE_GUARDS, Decision, Observation
from autotune.live.controller import Controller, ControllerConfig
from autotune.live.observer import Observed
from autotune.live.serve_state import AppState, DeploymentState
from autotune.paths import POLICIES
from autotune.registry import make_policy
from autotune.scenario import WorkloadSpec, load_scenario
from autotune.sim.run import simulate
from autotune.workload.arrivals import build_arrivals


def _app(obs: Observation) -> AppState:
    deps = {p.name: DeploymentState(p.name, p.target, p.running, p.starting, p.pending, p.draining, p.batch_size,
                                    {"max_batch_size": p.batch_size}, (), (), "HEALTHY", "") for p in obs.pools}
    return AppState("replay", "RUNNING", True, deps)


@dataclass
class Replay:
    """Observer and actuator for the live controller: hands it recorded observations, records what it applies."""

    observations: list[Observation]
    applied: list[Decision] = field(default_factory=list)

    def take_sample(self, t: float) -> tuple[Any, None]:
        return None, None

    def observe(self, now: float, time_s: float, window_s: float) -> Observed:
        obs = self.observations[len(self.applied)]
        return Observed(obs, _app(obs))

    def apply(self, decision: Decision, state: AppState) -> list[str]:
        self.applied.append(decision)
        return []


def _live(scenario_name: str, policy_spec: str, observations: list[Observation]) -> list[Decision]:
    sc = load_scenario(scenario_name)
    replay = Replay(observations)
    cfg = ControllerConfig(app="replay", interval_s=sc.control_interval_s, sample_s=1.0, guards=LIVE_GUARDS)
    clock = iter(np.arange(len(observations) + 1) * sc.control_interval_s + 1000.0)
    ctl = Controller(cfg, sc, make_policy(policy_spec, sc), lambda: None, lambda: {}, replay, lambda rec: None,
                     clock=lambda: float(next(clock)), observer=replay)  # type: ignore[arg-type]
    for _ in observations:
        ctl.decide()
    return replay.applied


def _crowd_hour() -> tuple[Any, Any]:
    sc = load_scenario("default")
    spec = WorkloadSpec(kind="synthetic", generator="flash", mean_rate=300.0, duration_s=1200.0,
                        params={"spike_factor": 4.0, "ramp_s": 30.0, "spike_duration_s": 240.0,
                                "spike_start_frac": 0.25})
    sc = sc.model_copy(update={"workload": spec})
    return sc, build_arrivals(sc, 3)


def test_simulator_and_live_controller_apply_identical_decisions_guards_included() -> None:
    sc, arr = _crowd_hour()
    res = simulate(sc, arr, make_policy("predictive", sc), 3)
    windows = [w for w in res.windows if w.decision is not None]
    assert sum(1 for w in windows if w.guard_notes) >= 3  # the guards did act: the comparison covers them
    live = _live("default", "predictive", [w.obs for w in windows])  # type: ignore[misc]
    assert len(live) == len(windows)
    for w, got in zip(windows, live, strict=True):
        assert w.applied is not None
        assert dict(got.replicas) == dict(w.applied.replicas) and dict(got.batch_size) == dict(w.applied.batch_size)


def test_gym_env_applies_what_the_simulator_applies_for_the_same_actions() -> None:
    from autotune.rl.env import RayServeClusterEnv

    sc, arr = _crowd_hour()
    pol = make_policy(str(POLICIES / "default.zip"), sc)
    res = simulate(sc, arr, pol, 3)
    sim_applied = [w.applied for w in res.windows if w.applied is not None]
    ctx = pol.ctx  # type: ignore[attr-defined]
    env = RayServeClusterEnv(sc, randomize=False, sizing=ctx.sizing, crowd_factor=ctx.crowd_factor,
                             burst_guard=ctx.burst_guard, guard_calm_s=ctx.guard_windows * ctx.interval_s,
                             mixed_capacity="measured" if ctx.mixed else "added")
    x, _ = env.reset(seed=0, options={"arrivals": arr, "sim_seed": 3})
    env_applied = []
    done = False
    while not done:
        action, _ = pol.model.predict(x, deterministic=True, action_masks=env.action_masks())  # type: ignore[attr-defined]
        x, _, done, _, _ = env.step(np.asarray(action))
        assert env.sim is not None
        env_applied.append(env.sim.windows[-2].applied)  # the window decided on
    assert len(env_applied) == len(sim_applied)
    for a, b in zip(env_applied, sim_applied, strict=True):
        assert a is not None and b is not None and dict(a.replicas) == dict(b.replicas)
