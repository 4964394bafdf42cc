"""The decision path every loop shares: observation, decision and policy types, guards, one step."""

from autotune.core.guards import LIVE_GUARDS, GuardConfig, Guarded, clamp_to_bounds, guard
from autotune.core.step import Guards, LoopState, Step, step
from autotune.core.types import Decision, Observation, Policy, PolicyState, PoolObs

__all__ = ["LIVE_GUARDS", "Decision", "GuardConfig", "Guarded", "Guards", "LoopState", "Observation", "Policy",
           "PolicyState", "PoolObs", "Step", "clamp_to_bounds", "guard", "step"]
