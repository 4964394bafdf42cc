"""Guardrails between a policy's decision and the cluster: small, separate, pure.

Each guard takes a decision and returns it (possibly changed) with a note of
what it changed, so a logged decision says both what the policy wanted and
why the cluster got something else (Kubernetes HPA's normalizeDesiredReplicas).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from autotune.policies.types import Decision
from autotune.scenario import PoolSpec


@dataclass(frozen=True)
class Guarded:
    decision: Decision
    notes: tuple[str, ...]


def clamp_to_bounds(decision: Decision, pools: Sequence[PoolSpec]) -> Guarded:
    """Replicas within [min_replicas, max_replicas]; batch sizes from the allowed list."""
    notes: list[str] = []
    replicas = dict(decision.replicas)
    batch = dict(decision.batch_size)
    for p in pools:
        if p.name in replicas:
            want = int(replicas[p.name])
            got = min(max(want, p.min_replicas), p.max_replicas)
            if got != want:
                notes.append(f"{p.name}: replicas {want} -> {got} (bounds {p.min_replicas}..{p.max_replicas})")
            replicas[p.name] = got
        if p.name in batch and batch[p.name] not in p.batch_sizes:
            want = int(batch[p.name])
            got = min(p.batch_sizes, key=lambda b: (abs(b - want), b))
            notes.append(f"{p.name}: batch {want} -> {got} (allowed {p.batch_sizes})")
            batch[p.name] = got
    known = {p.name for p in pools}
    for name in set(replicas) - known:
        notes.append(f"{name}: unknown pool ignored")
        del replicas[name]
    for name in set(batch) - known:
        del batch[name]
    return Guarded(replace(decision, replicas=replicas, batch_size=batch), tuple(notes))
