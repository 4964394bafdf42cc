"""Shared pieces of the RL tests: a fixed-action policy and short pinned episodes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from autotune.core.types import Decision, Observation, PolicyState
from autotune.rl import features as F
from autotune.scenario import Scenario, WorkloadSpec
from autotune.workload.arrivals import Arrivals, build_arrivals


@dataclass
class FixedActionPolicy:
    """The same network action every window, decoded exactly as the env decodes it."""

    ctx: F.FeatureContext
    action: list[int]
    name: str = "fixed-action"
    seen: list[Observation] = field(default_factory=list)

    def initial_state(self) -> PolicyState:
        return F.initial_state(self.ctx)

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        state = F.update_state(state, obs, self.ctx)
        return F.decode_action(self.action, obs, state, self.ctx)


def stay_action(ctx: F.FeatureContext) -> list[int]:
    """``moves``: keep every pool's headroom level, each pool at its best batch size."""
    out: list[int] = []
    for i in range(len(ctx.pools)):
        out += [F.MOVES.index(0), int(np.argmax(ctx.capacity[i]))]
    return out


def headroom_action(ctx: F.FeatureContext, mult: float, pool: int = 0) -> list[int]:
    """``absolute``: ``mult`` x the need on one pool at its best batch size, the other pools at zero (or min)."""
    assert ctx.action_kind == "absolute"
    out: list[int] = []
    for i in range(len(ctx.pools)):
        k = F.MULTIPLIERS.index(mult) if i == pool else F.MULTIPLIERS.index(0.0)
        out += [k, int(np.argmax(ctx.capacity[i]))]
    return out


def short_arrivals(scenario: Scenario, generator: str, rate: float, duration_s: float, seed: int) -> Arrivals:
    spec = WorkloadSpec(kind="synthetic", generator=generator, mean_rate=rate, duration_s=duration_s,
                        params={"period_s": duration_s} if generator == "daily" else {})
    return build_arrivals(scenario.model_copy(update={"workload": spec}), seed)
