"""The one policy interface shared by the simulator, the gym env and the live controller.

A policy is a pure function of an :class:`Observation` and an explicit state
dict, returning a :class:`Decision` and the next state (the shape of Ray
Serve's ``autoscaling_policy.py``). Time comes in ``Observation.time_s``: a
policy never reads a clock and never does I/O, so a simulated day and a live
day drive it identically and a restarted controller loses nothing but what it
failed to persist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

PolicyState = dict[str, Any]


@dataclass(frozen=True)
class PoolObs:
    """One instance pool (one Ray Serve deployment) over the last window."""

    name: str
    running: int
    starting: int
    pending: int
    draining: int
    batch_size: int
    # Time-averaged requests held by this pool's replicas (in the batcher or
    # executing) over the window: what Ray Serve calls ongoing requests.
    ongoing_requests: float
    # Time-averaged requests waiting in the router for a free slot,
    # attributed to this pool (Ray counts them at the handle).
    queued_requests: float = 0.0
    preemptions: int = 0
    # Replicas no node has taken for longer than the pool's start-up and a grace period: the cluster
    # cannot place them (no free GPU, a quota), as opposed to a node still being provisioned.
    unplaceable: int = 0
    # The replica count the deployment is asked to hold; Serve's ``target_num_replicas`` live, where
    # replicas it has not created yet are in no state. None: running + starting + pending.
    target_replicas: int | None = None
    # The deployment's ``max_queued_requests`` (-1: unbounded).
    max_queued: int = -1

    @property
    def target(self) -> int:
        """Replicas that count toward the pool's size (not draining)."""
        if self.target_replicas is not None:
            return self.target_replicas
        return self.running + self.starting + self.pending

    @property
    def total_requests(self) -> float:
        return self.ongoing_requests + self.queued_requests


@dataclass(frozen=True)
class Observation:
    """What a policy sees at the end of one control window."""

    time_s: float
    window_s: float
    arrivals: int
    completed: int
    dropped: int  # answered with an error or not at all: rejected at a queue cap (503), killed with a replica
    p50_ms: float
    p95_ms: float
    p99_ms: float
    # Fraction of requests completed in the window within the SLO (NaN if none).
    slo_attainment: float
    queued_requests: int
    pools: tuple[PoolObs, ...]
    timed_out: int = 0  # abandoned by their client while still queued
    # How bursty arrivals were within the window: (slot s, index of dispersion of counts per slot), finest
    # first (:mod:`autotune.core.burst`); empty when too few slots or arrivals to say.
    dispersion: tuple[tuple[float, float], ...] = ()

    @property
    def arrival_rate(self) -> float:
        return self.arrivals / self.window_s if self.window_s > 0 else 0.0

    def pool(self, name: str) -> PoolObs:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    def is_finite(self) -> bool:
        """True when every number a rule depends on is usable."""
        nums = [self.time_s, self.window_s, float(self.arrivals)]
        nums += [p.ongoing_requests for p in self.pools]
        nums += [p.queued_requests for p in self.pools]
        return all(math.isfinite(x) for x in nums)


@dataclass(frozen=True)
class Decision:
    """Target replicas (and optionally batch size and queue cap) per pool, with the reason.

    ``replicas`` maps every pool the policy decides for to a target count of
    non-draining replicas; a pool it leaves out keeps its target. ``batch_size``
    likewise lists only the pools whose batch size should change, and
    ``max_queued`` those whose ``max_queued_requests`` should (-1: unbounded).
    """

    replicas: Mapping[str, int]
    reason: str
    batch_size: Mapping[str, int] = field(default_factory=dict)
    max_queued: Mapping[str, int] = field(default_factory=dict)


class Policy(Protocol):
    """The interface every policy implements (baselines, RL, oracle).

    Optional attributes the decision path reads: ``first`` (a Decision the run starts with, e.g. a static
    fleet), ``start_warm`` (False: ``first`` pays start-up delays), ``reads_metrics`` (False: decide even on
    missing metrics, as a static fleet does), ``guarded`` (False: the simulator applies the pools' bounds
    alone, for the clairvoyant plans and for baselines that emulate an autoscaler running on its own).
    """

    name: str

    def initial_state(self) -> PolicyState: ...

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]: ...
