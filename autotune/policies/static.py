"""``static``: a fixed fleet, the cost of doing nothing clever."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from autotune.core.types import Decision, Observation, PolicyState


@dataclass(frozen=True)
class StaticPolicy:
    replicas: Mapping[str, int]
    batch_size: Mapping[str, int]
    name: str = "static"
    reads_metrics: bool = False  # a fixed fleet is applied whatever the metrics say
    guarded: bool = False

    @property
    def first(self) -> Decision:
        """A fixed fleet is there from the start."""
        return Decision(dict(self.replicas), "static fleet", dict(self.batch_size))

    def initial_state(self) -> PolicyState:
        return {}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        return self.first, state
