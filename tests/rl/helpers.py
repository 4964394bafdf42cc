"""Shared pieces of the RL tests: a fixed-action policy and short pinned episodes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from autotune.core.types import Decision, Observation, PolicyState
from autotune.rl.actions import MOVES, decode_action
from autotune.rl.observation import FeatureContext, initial_state, update_state
from autotune.scenario import Scenario, WorkloadSpec
from autotune.workload.arrivals import Arrivals, build_arrivals


@dataclass
class FixedActionPolicy:
    """The same network action every window, decoded exactly as the env decodes it."""

    ctx: FeatureContext
    action: list[int]
    name: str = "fixed-action"
    seen: list[Observation] = field(default_factory=list)

    def initial_state(self) -> PolicyState:
        return initial_state(self.ctx)

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        state = update_state(state, obs, self.ctx)
        return decode_action(self.action, state, self.ctx)


def move_action(ctx: FeatureContext, move: int = 0, batch: int | None = None) -> list[int]:
    """Every pool's level moved by ``move`` (0: kept), at batch index ``batch`` (None: its best)."""
    out: list[int] = []
    for i in range(len(ctx.pools)):
        out += [MOVES.index(move), int(np.argmax(ctx.capacity[i])) if batch is None else batch]
    return out


def short_arrivals(scenario: Scenario, generator: str, rate: float, duration_s: float, seed: int) -> Arrivals:
    spec = WorkloadSpec(kind="synthetic", generator=generator, mean_rate=rate, duration_s=duration_s,
                        params={"period_s": duration_s} if generator == "daily" else {})
    return build_arrivals(scenario.model_copy(update={"workload": spec}), seed)
