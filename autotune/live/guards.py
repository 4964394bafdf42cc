"""Live-only guardrails, applied after the policy and before the actuator.

Each is a small pure function ``(decision, ...) -> Guarded`` whose notes say
what it changed; :func:`guard` runs them in order and ends with the shared
:func:`autotune.guards.clamp_to_bounds`. ``current`` is the replica target the
cluster has now (per pool); a pool the decision leaves out keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from autotune.guards import Guarded, clamp_to_bounds
from autotune.policies.types import Decision, Observation, PoolObs
from autotune.scenario import PoolSpec


@dataclass(frozen=True)
class GuardConfig:
    max_step_up: int = 4  # replicas added per interval at most
    max_step_down: int = 1  # replicas removed per interval at most (one at a time, as HPA's default)
    up_cooldown_s: float = 0.0  # after any change, before another scale-up
    down_cooldown_s: float = 30.0  # after any change, before a scale-down


@dataclass
class GuardMemory:
    """What the time-based guards remember between intervals (controller-owned)."""

    last_change_s: dict[str, float] = field(default_factory=dict)


def _with(decision: Decision, replicas: dict[str, int]) -> Decision:
    return replace(decision, replicas=replicas)


def hold_on_missing_data(decision: Decision, obs: Observation, current: Mapping[str, int]) -> Guarded:
    """Stale or NaN metrics: never scale down (HPA's rule for missing metrics)."""
    if obs.is_finite():
        return Guarded(decision, ())
    reps = dict(decision.replicas)
    notes = []
    for name, want in decision.replicas.items():
        have = current.get(name, want)
        if want < have:
            reps[name] = have
            notes.append(f"{name}: {want} -> {have} (metrics missing or stale: no scale-down)")
    return Guarded(_with(decision, reps), tuple(notes))


def _hold_where(decision: Decision, obs: Observation, current: Mapping[str, int],
                blocked: Callable[[PoolObs, int, int], str | None]) -> Guarded:
    """Keep a pool at its current target wherever ``blocked(pool, want, have)`` gives a reason."""
    reps = dict(decision.replicas)
    notes = []
    for p in obs.pools:
        want, have = reps.get(p.name), current.get(p.name, p.target)
        why = None if want is None else blocked(p, want, have)
        if why:
            reps[p.name] = have
            notes.append(f"{p.name}: {want} -> {have} ({why})")
    return Guarded(_with(decision, reps), tuple(notes))


def no_scale_down_while_starting(decision: Decision, obs: Observation, current: Mapping[str, int]) -> Guarded:
    """Replicas still starting would be the ones removed, wasting their start-up: wait."""
    return _hold_where(decision, obs, current, lambda p, want, have: (
        f"{p.starting + p.pending} replicas still starting" if want < have and (p.starting or p.pending) else None))


def no_scale_up_while_pending(decision: Decision, obs: Observation, current: Mapping[str, int]) -> Guarded:
    """Replicas stuck pending (no free GPU/instance) mean more would queue too: no runaway scale-up."""
    return _hold_where(decision, obs, current, lambda p, want, have: (
        f"{p.pending} replicas pending: no free resources" if want > have and p.pending else None))


def cooldown(decision: Decision, current: Mapping[str, int], now: float, memory: GuardMemory,
             cfg: GuardConfig) -> Guarded:
    """No change in a direction within its cooldown of the pool's last change."""
    reps = dict(decision.replicas)
    notes = []
    for name, want in decision.replicas.items():
        have = current.get(name, want)
        last = memory.last_change_s.get(name)
        if last is None or want == have:
            continue
        wait = cfg.up_cooldown_s if want > have else cfg.down_cooldown_s
        if now - last < wait:
            reps[name] = have
            kind = "up" if want > have else "down"
            notes.append(f"{name}: {want} -> {have} (scale-{kind} cooldown, {wait - (now - last):.0f}s left)")
    return Guarded(_with(decision, reps), tuple(notes))


def limit_step(decision: Decision, current: Mapping[str, int], cfg: GuardConfig) -> Guarded:
    """At most ``max_step_up``/``max_step_down`` replicas per interval."""
    reps = dict(decision.replicas)
    notes = []
    for name, want in decision.replicas.items():
        have = current.get(name, want)
        got = min(want, have + cfg.max_step_up) if want > have else max(want, have - cfg.max_step_down)
        if got != want:
            reps[name] = got
            notes.append(f"{name}: {want} -> {got} (max step +{cfg.max_step_up}/-{cfg.max_step_down})")
    return Guarded(_with(decision, reps), tuple(notes))


def guard(decision: Decision, obs: Observation, current: Mapping[str, int], pools: Sequence[PoolSpec],
          now: float, memory: GuardMemory, cfg: GuardConfig) -> Guarded:
    """Every guard in order; bounds first (so later guards see sane numbers) and last (the final word)."""
    notes: list[str] = []
    steps = (
        lambda d: clamp_to_bounds(d, pools),
        lambda d: hold_on_missing_data(d, obs, current),
        lambda d: no_scale_down_while_starting(d, obs, current),
        lambda d: no_scale_up_while_pending(d, obs, current),
        lambda d: cooldown(d, current, now, memory, cfg),
        lambda d: limit_step(d, current, cfg),
        lambda d: clamp_to_bounds(d, pools),
    )
    for step in steps:
        g = step(decision)
        decision = g.decision
        notes.extend(g.notes)
    return Guarded(decision, tuple(notes))


def record_changes(before: Mapping[str, int], after: Mapping[str, int], now: float, memory: GuardMemory) -> None:
    """Remember when each pool's target last changed (for :func:`cooldown`)."""
    for name, n in after.items():
        if before.get(name) != n:
            memory.last_change_s[name] = now
