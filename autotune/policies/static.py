"""``static``: a fixed fleet, the cost of doing nothing clever."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from autotune.policies.types import Decision, Observation, PolicyState


@dataclass(frozen=True)
class StaticPolicy:
    replicas: Mapping[str, int]
    batch_size: Mapping[str, int]
    name: str = "static"

    @property
    def first(self) -> Decision:
        """A fixed fleet is there from the start."""
        return Decision(dict(self.replicas), "static fleet", dict(self.batch_size))

    def initial_state(self) -> PolicyState:
        return {}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        return self.first, state
