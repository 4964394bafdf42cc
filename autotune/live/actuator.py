"""Apply a guarded decision to the cluster: replicas by the scale API, batch size by ``user_config`` and the
queue cap by ``max_queued_requests``, both in one declarative update.

Both are lightweight updates in Ray Serve: ``user_config`` is handed to ``reconfigure`` in place, and
``max_queued_requests`` is read by every handle's router from the deployment config it is pushed, so
neither restarts a replica.

An actuator returns the list of actions it took (for the decision log) and
raises :class:`autotune.live.http.Unreachable` when the cluster cannot be
reached; the controller then keeps its last applied state and retries next
interval. :class:`DryRun` computes the same actions and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from autotune.core.types import Decision
from autotune.live.serve_api import ServeAPI
from autotune.live.serve_state import AppState


@dataclass(frozen=True)
class Plan:
    """The changes a decision implies against the cluster's current state."""

    replicas: Mapping[str, tuple[int, int]]  # pool -> (now, new)
    batch_size: Mapping[str, tuple[int | None, int]]
    max_queued: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def actions(self) -> list[str]:
        out = [f"scale {p}: {a} -> {b}" for p, (a, b) in self.replicas.items()]
        out += [f"batch {p}: {a} -> {b}" for p, (a, b) in self.batch_size.items()]
        out += [f"max_queued {p}: {a} -> {b}" for p, (a, b) in self.max_queued.items()]
        return out

    @property
    def empty(self) -> bool:
        return not self.replicas and not self.batch_size and not self.max_queued

    @property
    def declarative(self) -> bool:
        """True when the change needs the declarative config update (not the scale API alone)."""
        return bool(self.batch_size or self.max_queued)


def plan(decision: Decision, state: AppState) -> Plan:
    reps = {}
    batch = {}
    for pool, n in decision.replicas.items():
        d = state.deployments.get(pool)
        if d is not None and d.target != n:
            reps[pool] = (d.target, int(n))
    for pool, b in decision.batch_size.items():
        d = state.deployments.get(pool)
        if d is not None and d.batch_size != b:
            batch[pool] = (d.batch_size, int(b))
    queued = {}
    for pool, q in decision.max_queued.items():
        d = state.deployments.get(pool)
        if d is not None and d.max_queued != q:
            queued[pool] = (d.max_queued, int(q))
    return Plan(reps, batch, queued)


class Actuator(Protocol):
    def apply(self, decision: Decision, state: AppState) -> list[str]: ...


class DryRun:
    def apply(self, decision: Decision, state: AppState) -> list[str]:
        return [f"(dry run) {a}" for a in plan(decision, state).actions()]


class ServeActuator:
    """Ray Serve through the dashboard: external scale API, and a declarative update for ``user_config`` and
    ``max_queued_requests``."""

    def __init__(self, api: ServeAPI, app: str) -> None:
        self.api = api
        self.app = app

    def apply(self, decision: Decision, state: AppState) -> list[str]:
        p = plan(decision, state)
        if p.declarative:
            # A declarative update also rewrites num_replicas, which would undo
            # the scale API's targets: send every pool's intended target with it.
            changes: dict[str, dict[str, Any]] = {}
            for name, d in state.deployments.items():
                if name not in decision.replicas and name not in p.batch_size and name not in p.max_queued:
                    continue
                # (Serve's config schema wants num_replicas >= 1; 0 goes through the scale API below.)
                fields: dict[str, Any] = {"num_replicas": max(1, int(decision.replicas.get(name, d.target)))}
                if name in p.batch_size:
                    fields["user_config"] = {**d.user_config, "max_batch_size": p.batch_size[name][1]}
                if name in p.max_queued:
                    fields["max_queued_requests"] = p.max_queued[name][1]
                changes[name] = fields
            self.api.update_deployments(self.app, changes)
        for pool, (_, n) in p.replicas.items():
            self.api.scale(self.app, pool, n)
        if p.declarative:
            for pool, n in decision.replicas.items():
                if n == 0 and pool not in p.replicas:
                    self.api.scale(self.app, pool, 0)  # the config update above put it at 1
        return p.actions()
