"""One control step, the same in the simulator, the gym env and the live controller.

``step(policy, obs, state, guards)`` asks the policy, guards its decision and
returns both with the next state; acting on ``Step.applied`` is the caller's
separate move (the simulator's ``ClusterSim.apply``, the live actuator, or
nothing in a dry run). Because the three callers share this function, a
what-if replays exactly the decisions ``autotune control`` would apply to the
same observations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from autotune.core.guards import LIVE_GUARDS, GuardConfig, guard
from autotune.core.types import Decision, Observation, Policy, PolicyState
from autotune.scenario import PoolSpec


@dataclass(frozen=True)
class Guards:
    """The guard pipeline a step runs: the pools' bounds, and the live guards unless ``config`` is None."""

    pools: tuple[PoolSpec, ...]
    config: GuardConfig | None = LIVE_GUARDS

    @classmethod
    def bounds_only(cls, pools: Sequence[PoolSpec]) -> Guards:
        return cls(tuple(pools), None)


@dataclass(frozen=True)
class LoopState:
    """What a control loop carries between steps: the policy's own state and when each pool last changed."""

    policy: PolicyState
    last_change_s: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def start(cls, policy: Policy) -> LoopState:
        return cls(policy.initial_state())


@dataclass(frozen=True)
class Step:
    decision: Decision  # what the policy asked for (or the hold that replaced it)
    applied: Decision  # what the guards let through: what to act on
    notes: tuple[str, ...]  # what each guard changed
    error: str | None = None  # the policy raised this; the step held the current fleet instead

    @property
    def held(self) -> bool:
        """True when the policy was not asked or failed, so its state did not move."""
        return self.error is not None or self.decision.reason.startswith(HOLD_MISSING)


HOLD_MISSING = "metrics missing or stale"


def current_targets(obs: Observation) -> dict[str, int]:
    return {p.name: p.target for p in obs.pools}


def step(policy: Policy, obs: Observation, state: LoopState, guards: Guards,
         catch: bool = False) -> tuple[Step, LoopState]:
    """Decide on ``obs``, guard the decision, and return it with the next loop state.

    On metrics that are not finite a policy that reads them is not asked (it would scale on noise): the
    step holds the current fleet. With ``catch`` a policy that raises holds too, and ``Step.error`` says
    why (the live controller must outlive a bad policy; the simulator lets the error surface).
    """
    current = current_targets(obs)
    error = None
    reads_metrics = getattr(policy, "reads_metrics", True)
    if reads_metrics and not obs.is_finite():
        decision, policy_state = Decision(current, f"{HOLD_MISSING}: conservative hold"), state.policy
    else:
        try:
            decision, policy_state = policy.decide(obs, state.policy)
        except Exception as e:  # noqa: BLE001 - only with catch: a failing policy must not stop a live loop
            if not catch:
                raise
            decision, policy_state, error = Decision(current, "policy failed: hold"), state.policy, repr(e)
    g = guard(decision, obs, current, guards.pools, state.last_change_s, guards.config, reads_metrics)
    last = dict(state.last_change_s)
    for name, n in g.decision.replicas.items():
        if current.get(name) != n:
            last[name] = obs.time_s
    return Step(decision, g.decision, g.notes, error), LoopState(policy_state, last)
