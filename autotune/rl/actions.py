"""What a trained network's action means: the action space, its masks and prior, and the decoding to a Decision.

One action kind, ``fill``: per pool, a move of its headroom level along
:data:`~autotune.rl.observation.LEVELS` and a batch-size index. Pools are filled
cheapest first (dollars per req/s of SLO capacity): a pool at level L holds
what L times the sizing load needs beyond what the cheaper pools carry, so when
the cheap pool reaches its quota the next cheapest takes the rest. Levels live
in the policy state, so exploring is a random walk of the headroom rather than
a new random fleet every window, and the deterministic policy keeps what it
learnt to hold. Every pool starts at level 1.0, where the untrained policy is
its sizing's rule (``predictive``, or ``predictive+crowd:K``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from autotune.core.burst import bucket, bucket_swing, smoothed
from autotune.core.types import Decision, PolicyState
from autotune.policies.sizing import fill_fleet
from autotune.rl.observation import INITIAL_LEVEL, LEVELS, FeatureContext, need_floor, sizing_rate

ActionKind = Literal["fill"]
# Level moves along LEVELS: 0 keeps the level (no churn), +-1 fine-tunes it, +-3 crosses the ladder in five windows.
MOVES: tuple[int, ...] = (0, 1, -1, 3, -3)


def action_nvec(ctx: FeatureContext) -> list[int]:
    """MultiDiscrete sizes: per pool a level move and a batch-size index."""
    return [n for _ in ctx.pools for n in (len(MOVES), ctx.max_batches)]


def action_mask(ctx: FeatureContext) -> np.ndarray:
    """Allowed choices, flattened as sb3-contrib expects for MultiDiscrete.

    Forbidden: batch sizes the pool does not have or that cannot meet the SLO
    (capacity 0). Every move stays allowed; level 0 on a pool with
    min_replicas > 0 means "down to the minimum".
    """
    parts: list[np.ndarray] = []
    for i, _ in enumerate(ctx.pools):
        b = np.zeros(ctx.max_batches, dtype=bool)
        b[: len(ctx.batch_sizes[i])] = [c > 0 for c in ctx.capacity[i]]
        if not b.any():
            b[0] = True
        parts += [np.ones(len(MOVES), dtype=bool), b]
    return np.concatenate(parts)


def prior_logits(ctx: FeatureContext, strength: float) -> np.ndarray:
    """Initial action-logit bias: keep every level, each pool at its batch size of most SLO capacity.

    A warm start for exploration, not a rule: at ``strength`` 2.5 the prior
    choice starts with ~45% probability and PPO moves away from it freely.
    Without it, most of a 2-core training budget goes to discovering that an
    A100 replica should not be kept for 25 req/s.
    """
    out: list[np.ndarray] = []
    for i in range(len(ctx.pools)):
        m = np.zeros(len(MOVES))
        m[MOVES.index(0)] = strength
        b = np.zeros(ctx.max_batches)
        b[int(np.argmax(ctx.capacity[i]))] = strength
        out += [m, b]
    return np.concatenate(out).astype(np.float32)


def burst_guarded(state: PolicyState, ctx: FeatureContext) -> str:
    """Why the burst guard holds this decision to the crowd insurance ("" when it does not).

    A trained ``crowd`` policy can learn to give up the insurance (levels below
    1.0, batch sizes below the pool's best) on bursty loads as well as on the
    smooth ones where it saves money. Until ``guard_windows`` have passed
    without a burst of ``burst_guard`` x the calm load, every pool's level is at
    least 1.0 and its batch size the one with the most SLO capacity, as the
    untrained policy decides. The count starts at 0, so a first burst, which
    comes unannounced, is covered too. The calm span must outlast the calm
    spells between bursts (exponential in MMPP, so long ones are common),
    hence 30 minutes by default.
    """
    if not ctx.burst_guard:
        return ""
    calm = int(state.get("calm_run", 0))
    if calm >= ctx.guard_windows:
        return ""
    return (f" (burst guard: {calm * ctx.interval_s / 60:.1f} of {ctx.guard_windows * ctx.interval_s / 60:g} min "
            f"without a {ctx.burst_guard:g}x burst)")


def _batch_of(ctx: FeatureContext, i: int, bi: int) -> int:
    bs = ctx.batch_sizes[i]
    b = bs[min(bi, len(bs) - 1)]
    if ctx.capacity[i][bs.index(b)] <= 0:  # masked in training; be safe for a stray action
        b = bs[int(np.argmax(ctx.capacity[i]))]
    return b


def decode_action(action: Sequence[int] | np.ndarray, state: PolicyState,
                  ctx: FeatureContext) -> tuple[Decision, PolicyState]:
    """Target replicas and batch sizes per pool for a network action, and the state with the new levels.

    ``state`` is already updated with the window's observation (:func:`autotune.rl.observation.update_state`).
    """
    rate = sizing_rate(state, ctx)
    floor = need_floor(state, ctx)
    levels = list(state.get("level") or [LEVELS.index(INITIAL_LEVEL)] * len(ctx.pools))
    guarded = burst_guarded(state, ctx)
    lowest = LEVELS.index(1.0) if guarded else 0
    order = ctx.cost_order()
    batch: dict[str, int] = {}
    why: dict[int, str] = {}
    needs: list[float] = []
    for i in order:
        name = ctx.pools[i]
        move = MOVES[min(int(action[2 * i]), len(MOVES) - 1)]
        levels[i] = min(max(levels[i] + move, lowest), len(LEVELS) - 1)
        bi = int(np.argmax(ctx.capacity[i])) if guarded else int(action[2 * i + 1])
        batch[name] = _batch_of(ctx, i, bi)
        level = LEVELS[levels[i]]
        needs.append(max(level * rate, floor))
        why[i] = f"{name}: {level:g}x ({move:+d}) of {rate:.0f} req/s{guarded}"
        if needs[-1] > level * rate + 1e-9:
            why[i] += f" (the forecast's {needs[-1]:.0f})"
    names = [ctx.pools[i] for i in order]
    seen = [x for x in state.get("dispersion", []) if len(x) == 2]
    shape = (smoothed([x[0] for x in seen]), smoothed([x[1] for x in seen]))
    carry = {ctx.pools[i]: ctx.carry(i, batch[ctx.pools[i]], shape) for i in order}
    bursty = (bucket(shape[0]), bucket_swing(shape[1])) != (1.0, 0.0)
    # The replicas of all pools pooled, as the rules fill: same-GPU pools carry as one fleet.
    replicas = fill_fleet(needs, names, carry, dict(zip(ctx.pools, ctx.min_replicas, strict=True)),
                          dict(zip(ctx.pools, ctx.max_replicas, strict=True)),
                          dict(zip(ctx.pools, ctx.gpu, strict=True)), None if bursty else ctx.mixed, batch)
    for i in order:
        why[i] += f" -> {replicas[ctx.pools[i]]} @b{batch[ctx.pools[i]]}"
    pools = range(len(ctx.pools))
    return (Decision({ctx.pools[i]: replicas[ctx.pools[i]] for i in pools}, "rl: " + "; ".join(why[i] for i in pools),
                     {ctx.pools[i]: batch[ctx.pools[i]] for i in pools}), {**state, "level": levels})
