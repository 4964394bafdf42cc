"""Queue caps that shed a surge's excess instead of letting it delay everything after it.

When a surge outruns what the fleet can start, an unbounded FIFO queue at the router holds the excess, and
every later request waits behind it until it drains: minutes of misses after the surge is over. A request
the fleet cannot serve within the SLO is lost either way; capping the queue at what the running fleet
drains within the SLO rejects it at once (Serve's 503, which a client can retry elsewhere) and keeps the
wait of every request it does queue within the SLO.

:func:`queue_cap` is the rule, pure; ``POLICY+shed`` (:func:`with_queue_caps`) applies it to any policy's
decisions, from the running replicas each window sees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from autotune.core.types import Decision, Observation, Policy, PolicyState
from autotune.policies.sizing import Capacity
from autotune.scenario import Scenario

SHED_MARK = "+shed"


def queue_cap(replica_rps: float, running: int, slo_latency_ms: float, service_ms: float = 0.0) -> int:
    """The ``max_queued_requests`` whose queue ``running`` replicas drain within the SLO.

    ``replica_rps`` is what one replica serves within the SLO; ``service_ms`` the time a request still
    takes once it leaves the queue (its batch and GPU time), taken off the wait it may spend queued. At
    least 1: Ray Serve takes -1 (no limit) or a positive cap, and one queued request is what a fleet that
    has nothing running yet can hold without promising a wait it cannot keep.
    """
    wait_s = max(0.0, slo_latency_ms - service_ms) / 1e3
    return max(1, math.floor(max(0.0, replica_rps) * max(0, running) * wait_s))


def pool_caps(obs: Observation, per_replica_rps: Mapping[str, float], slo_latency_ms: float,
              service_ms: Mapping[str, float] | None = None) -> dict[str, int]:
    """:func:`queue_cap` for every pool of ``obs`` with a known capacity, from its running replicas."""
    service = service_ms or {}
    return {p.name: queue_cap(per_replica_rps[p.name], p.running, slo_latency_ms, service.get(p.name, 0.0))
            for p in obs.pools if p.name in per_replica_rps}


@dataclass(frozen=True)
class QueueCaps:
    """``POLICY+shed``: the inner policy's decisions, with every pool's queue cap set by :func:`queue_cap`."""

    inner: Policy
    per_replica_rps: Mapping[str, float]  # per pool, at its initial batch size
    service_ms: Mapping[str, float]
    slo_latency_ms: float
    name: str

    @property
    def first(self) -> Decision | None:
        return getattr(self.inner, "first", None)

    @property
    def start_warm(self) -> bool:
        return getattr(self.inner, "start_warm", True)

    @property
    def reads_metrics(self) -> bool:
        return getattr(self.inner, "reads_metrics", True)

    @property
    def guarded(self) -> bool:
        return getattr(self.inner, "guarded", True)

    def initial_state(self) -> PolicyState:
        return self.inner.initial_state()

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        decision, state = self.inner.decide(obs, state)
        caps = pool_caps(obs, self.per_replica_rps, self.slo_latency_ms, self.service_ms)
        return replace(decision, max_queued={**decision.max_queued, **caps}), state


def split_shed(spec: str) -> tuple[str, bool]:
    """``(inner, True)`` for ``POLICY+shed``, else ``(spec, False)``."""
    if spec.endswith(SHED_MARK):
        return spec[: -len(SHED_MARK)], True
    return spec, False


def with_queue_caps(inner: Policy, scenario: Scenario, capacity: Capacity, name: str) -> QueueCaps:
    rps = {}
    service = {}
    for p in scenario.runtime_pools():
        rps[p.name] = capacity.replica(p, p.spec.batch_size)
        # Once out of the router queue a request waits for its batch to fill or time out, then runs.
        service[p.name] = p.spec.batch_wait_timeout_s * 1e3 + p.batch_ms(p.spec.batch_size)
    return QueueCaps(inner, rps, service, scenario.slo.latency_ms, name)
