"""The one place where an :class:`Observation` becomes RL features and an action becomes a Decision.

Both the gym env (training) and :class:`autotune.rl.policy.RLPolicy` (what-if,
live controller) call these functions, so a trained network sees exactly the
same numbers in both. Feature history (recent arrival rates, preemptions) lives
in an explicit, JSON-friendly state dict, as the Policy protocol requires.

Scale invariance (one policy for 10..1,000 req/s): loads are expressed relative
to SLO capacity (:mod:`autotune.policies.sizing`), and the action sets a *headroom
multiplier* on the capacity-implied replica need rather than a replica count,
so "1.2x of what this load needs" means the same at every load level.

Two action kinds (the model card's ``action.kind``):

- ``moves`` (policies trained from 29 Nov, session 2): per pool, move a
  persistent headroom level up or down a ladder (:data:`LEVELS`) or keep it;
  the level lives in the policy state and the target follows the load at that
  level. Exploring then is a random walk of the headroom, not a new random fleet
  every window, and the deterministic policy keeps what it learnt to hold.
- ``fill`` (multi-pool scenarios with quotas): levels and moves as ``moves``,
  but the pools are filled cheapest first (dollars per req/s of SLO capacity):
  a pool at level L holds what L times the load needs *beyond* the capacity of
  the cheaper pools. Every pool starts at INITIAL_LEVEL, so the untrained
  policy is the ``headroom`` rule with spill-over: when the cheap pool reaches
  its quota, the next cheapest takes the rest. With ``moves`` a pool's level
  is independent of the others, so that spill-over is something PPO would
  have to discover window by window. On one pool the two kinds are identical.
- ``absolute`` (earlier cards, no ``kind``): per pool, pick the multiplier
  itself every window (:data:`MULTIPLIERS`), or hold the current target.

Sizings (the card's ``features.sizing``), the load every headroom multiplies:

- ``forecast`` (cards without it): the ``headroom`` rule's forecast of the
  last windows. The network sees 5 minutes of history, so a burst from longer
  ago is invisible to it.
- ``burst``: the ``burst`` rule's max(forecast, ratio x base load), where the
  ratio is the largest burst of the last 30 minutes
  (:func:`autotune.policies.burst.burst_size`); two more features (that
  ratio and the size over the forecast) let the network weigh it. At its
  initial levels a ``fill`` policy with this sizing is the ``burst`` rule.
- ``predictive``: the ``predictive`` rule's margin x predicted load (a robust
  trend over the start-up lead, the margin the 95th percentile of its recent
  actual/predicted ratios; :mod:`autotune.policies.predictive`); two more
  features (the margin and the size over the forecast). Levels start at 1.0,
  so the untrained ``fill`` policy is the ``predictive`` rule.
- ``crowd``: the larger of the ``predictive`` size and ``crowd_factor`` x the
  calm load (the median window rate of the last 10 minutes,
  :mod:`autotune.policies.crowd`); three more features (the rule's margin, its
  size and that floor, over the forecast). A level multiplies that larger load,
  but the ``predictive`` size stays a hard minimum (:func:`need_floor`): a
  level below 1.0 trades only the insurance above the forecast for dollars,
  which is what training can learn, never the forecast itself (a first design
  without that minimum halved a cold start's fleet and lost a steep ramp). The
  untrained ``fill`` policy is ``predictive+crowd:K``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autotune.core.types import Decision, Observation, PolicyState
from autotune.policies.burst import MAX_RATIO, burst_size, remember
from autotune.policies.burst import windows as burst_windows
from autotune.policies.crowd import CALM_S, CROWD_DEFAULT, calm_load
from autotune.policies.headroom import forecast
from autotune.policies.predictive import history as predictive_history
from autotune.policies.predictive import margin, predict, record
from autotune.policies.predictive import windows as predictive_windows
from autotune.policies.sizing import (
    Capacity,
    MixFn,
    capacity_table,
    fill_fleet,
    fleet_size_limit,
    gpu_groups,
    replicas_for,
)
from autotune.scenario import Scenario

N_RATES = 6  # windows of arrival-rate history fed directly (60 s at the default 10 s interval)
N_HISTORY = 30  # windows kept for burstiness features (5 min): how much headroom bursts have needed
GUARD_CALM_S = 1800.0  # burst guard: calm this long before a crowd policy may give up insurance
# Headroom choices per pool; index 0 keeps the current target (no churn). The
# rest multiply the replica count this pool alone would need for the forecast load.
MULTIPLIERS: tuple[float, ...] = (math.nan, 0.0, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.2, 1.3, 1.45, 1.6, 1.8, 2.0,
                                  2.5, 3.0)
HOLD = 0
# Largest scale-down per window as a fraction of the current target (at least
# one replica); scale-up is never limited. 1.0 = symmetric: the decoded target
# is exactly the chosen multiplier's, up or down, so a sampled action (training)
# and the deterministic one (shipped) mean the same fleet. The old 0.1 made the
# exploring fleet a running max of sampled headroom (the "exploration ratchet":
# safe in training, under-provisioned when deterministic); policies trained
# under it keep it via their model card (see :func:`max_down_fraction_of`).
MAX_DOWN_FRACTION = 1.0
LEGACY_MAX_DOWN_FRACTION = 0.1  # model cards without ``action.max_down_fraction``
# ``moves``: headroom levels (multipliers of the need) and the moves along them;
# move 0 keeps the level. A pool starts at 0 except the most cost-efficient one
# (INITIAL_LEVEL): the fleet a policy that never moves keeps.
LEVELS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.2, 1.3, 1.45, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0)
MOVES: tuple[int, ...] = (0, 1, -1, 3, -3)
INITIAL_LEVEL = 1.2
ACTION_KIND = "moves"  # what training produces now; cards without ``action.kind`` are "absolute"
ACTION_KINDS: tuple[str, ...] = ("moves", "fill", "absolute")
LEVEL_KINDS = ("moves", "fill")  # kinds that keep a headroom level per pool in the policy state
SIZINGS: tuple[str, ...] = ("forecast", "burst", "predictive", "crowd")
PREDICTIVE_SIZINGS = ("predictive", "crowd")  # sizings that keep the predictive rule's trend and margin
SIZING = "forecast"  # cards without ``features.sizing``
GLOBAL_FEATURES = N_RATES + 15
POOL_FEATURES = 13  # + 1 (the pool's headroom level) for ``moves``


@dataclass(frozen=True)
class FeatureContext:
    """Per-scenario constants the features and actions need (capacities, prices, bounds)."""

    pools: tuple[str, ...]
    batch_sizes: tuple[tuple[int, ...], ...]
    capacity: tuple[tuple[float, ...], ...]  # req/s per replica within the SLO, per batch size
    price: tuple[float, ...]
    spot: tuple[bool, ...]
    min_replicas: tuple[int, ...]
    max_replicas: tuple[int, ...]
    ref_capacity: float  # best per-replica capacity of the most cost-efficient pool
    slo_ms: float
    interval_s: float
    day_s: float
    max_down_fraction: float = MAX_DOWN_FRACTION  # action semantics; see MAX_DOWN_FRACTION
    action_kind: str = ACTION_KIND  # one of ACTION_KINDS
    sizing: str = SIZING  # one of SIZINGS
    base_windows: int = N_HISTORY  # ``burst`` sizing: base load and memory lengths, in windows
    memory_windows: int = 180
    fit_windows: int = N_HISTORY  # ``predictive`` sizing: trend fit and start-up lead, in windows
    lead_windows: int = 15
    crowd_factor: float = CROWD_DEFAULT  # ``crowd`` sizing: the surge over the calm load it insures at level 1.0
    calm_windows: int = 60  # ``crowd`` sizing: windows the calm load is the median of
    burst_guard: float = 0.0  # ``crowd`` sizing: levels below 1.0 only after no burst this many x calm (0: off)
    guard_windows: int = 180  # ... for this many windows (burst_guarded)
    # Level kinds: req/s n replicas carry within the SLO, [pool][batch index][n] (autotune.capacity.fleet_capacity).
    totals: tuple[tuple[tuple[float, ...], ...], ...] = ()
    gpu: tuple[str, ...] = ()  # per pool, its GPU type: same-GPU pools pool as one fleet (capacity.pooled_capacity)
    mixed: MixFn | None = None  # what fleets that mix GPU types carry (Capacity.mixes)

    @property
    def max_batches(self) -> int:
        return max(len(b) for b in self.batch_sizes)

    @property
    def pool_features(self) -> int:
        return POOL_FEATURES + (self.action_kind in LEVEL_KINDS)

    @property
    def global_features(self) -> int:
        return GLOBAL_FEATURES + 2 * (self.sizing != "forecast") + (self.sizing == "crowd")

    @property
    def history(self) -> int:
        """Rate windows kept in the state: the features' history, or the burst base before this window."""
        if self.sizing == "burst":
            return max(N_HISTORY, self.base_windows + 1)
        if self.sizing in PREDICTIVE_SIZINGS:
            calm = self.calm_windows if self.sizing == "crowd" else 0
            return max(N_HISTORY, predictive_history(self.fit_windows, self.lead_windows), calm)
        return N_HISTORY

    @property
    def initial_level(self) -> float:
        """Where levels start: 1.2x the forecast, or the predictive rule's own size (its margin is learnt)."""
        return 1.0 if self.sizing in PREDICTIVE_SIZINGS else INITIAL_LEVEL

    @property
    def obs_size(self) -> int:
        return self.global_features + self.pool_features * len(self.pools)

    def cap(self, pool: int, batch: int) -> float:
        bs = self.batch_sizes[pool]
        return self.capacity[pool][bs.index(batch)] if batch in bs else 0.0

    def carry(self, pool: int, batch: int) -> tuple[float, ...]:
        """What 0..max_replicas replicas of ``pool`` carry at ``batch`` (level kinds only)."""
        return self.totals[pool][self.batch_sizes[pool].index(batch)]

    def best_efficiency(self) -> float:
        """Cheapest dollars per hour per req/s of SLO capacity over all pools."""
        return min(p / max(c) for p, c in zip(self.price, self.capacity, strict=False) if max(c) > 0)


def max_down_fraction_of(card: dict) -> float:
    """The scale-down limit a policy was trained with, from its model card (legacy cards: 0.1)."""
    action = card.get("action") or {}
    v = action.get("max_down_fraction", LEGACY_MAX_DOWN_FRACTION) if isinstance(action, dict) else None
    return float(v) if isinstance(v, (int, float)) and 0 < v <= 1 else LEGACY_MAX_DOWN_FRACTION


def action_kind_of(card: dict) -> str:
    """How a policy's actions decode, from its model card (cards before ``kind`` existed: absolute)."""
    action = card.get("action") or {}
    kind = action.get("kind", "absolute") if isinstance(action, dict) else "absolute"
    if kind not in ACTION_KINDS:  # decoding a policy the wrong way would look like working
        raise ValueError(f"unknown action kind {kind!r} (known: {', '.join(ACTION_KINDS)})")
    return str(kind)


def sizing_of(card: dict) -> str:
    """The load a policy's headroom multiplies, from its model card (cards before ``sizing``: forecast)."""
    feats = card.get("features") or {}
    sizing = feats.get("sizing", SIZING) if isinstance(feats, dict) else SIZING
    if sizing not in SIZINGS:
        raise ValueError(f"unknown sizing {sizing!r} (known: {', '.join(SIZINGS)})")
    return str(sizing)


def crowd_factor_of(card: dict) -> float:
    """The surge a ``crowd``-sized policy insures at level 1.0, from its model card."""
    feats = card.get("features") or {}
    v = feats.get("crowd_factor", CROWD_DEFAULT) if isinstance(feats, dict) else CROWD_DEFAULT
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 1.0 <= v <= 100.0:
        raise ValueError(f"crowd_factor must be a number from 1 to 100 (got {v!r})")
    return float(v)


def check_burst_guard(ratio: object, calm_s: object) -> tuple[float, float]:
    """(burst ratio, calm seconds) of a burst guard, or ValueError naming the bad one."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (ratio == 0 or 1.0 < ratio <= 100.0):
        raise ValueError(f"burst_guard must be 0 (off) or a number above 1 and at most 100 (got {ratio!r})")
    if isinstance(calm_s, bool) or not isinstance(calm_s, (int, float)) or not 0 < calm_s <= 86400.0:
        raise ValueError(f"guard_calm_s must be seconds, above 0 and at most 86400 (got {calm_s!r})")
    return float(ratio), float(calm_s)


def burst_guard_of(card: dict) -> tuple[float, float]:
    """A ``crowd``-sized policy's burst guard from its model card: (burst ratio, 0 for none; calm seconds)."""
    feats = card.get("features") or {}
    feats = feats if isinstance(feats, dict) else {}
    return check_burst_guard(feats.get("burst_guard", 0.0), feats.get("guard_calm_s", GUARD_CALM_S))


def make_context(scenario: Scenario, capacity_of: Capacity, max_down_fraction: float = MAX_DOWN_FRACTION,
                 action_kind: str = ACTION_KIND, sizing: str = SIZING,
                 crowd_factor: float = CROWD_DEFAULT, burst_guard: float = 0.0,
                 guard_calm_s: float = GUARD_CALM_S, measure_mixes: bool = True) -> FeatureContext:
    if sizing == "crowd" and action_kind != "fill":  # its forecast minimum holds for a fleet, which fill sizes
        raise ValueError(f"sizing 'crowd' needs action kind 'fill' (got {action_kind!r})")
    if burst_guard and sizing != "crowd":  # only crowd levels below 1.0 give up insurance
        raise ValueError(f"a burst guard needs sizing 'crowd' (got {sizing!r})")
    caps = capacity_table(capacity_of, scenario)
    rt = scenario.runtime_pools()
    capacity = tuple(tuple(caps[p.name][b] for b in p.spec.batch_sizes) for p in rt)
    usable = [i for i, c in enumerate(capacity) if max(c) > 0]
    best = min(usable, key=lambda i: rt[i].price_per_hour / max(capacity[i]))
    base_windows, memory_windows = burst_windows(scenario.control_interval_s)
    reach = {p.name: fleet_size_limit(scenario, p) for p in rt}  # curves run over the pool's whole GPU group
    totals = tuple(tuple(capacity_of.fleet(p, b, reach[p.name]) if c > 0 else (0.0,) * (reach[p.name] + 1)
                         for b, c in zip(p.spec.batch_sizes, caps_i)) for p, caps_i in zip(rt, capacity)
                   ) if action_kind in LEVEL_KINDS else ()
    fit_windows, lead_windows, _ = predictive_windows(scenario, rt[best].name)
    return FeatureContext(
        pools=tuple(p.name for p in rt),
        batch_sizes=tuple(tuple(p.spec.batch_sizes) for p in rt),
        capacity=capacity,
        price=tuple(p.price_per_hour for p in rt),
        spot=tuple(p.spec.spot for p in rt),
        min_replicas=tuple(p.spec.min_replicas for p in rt),
        max_replicas=tuple(p.spec.max_replicas for p in rt),
        ref_capacity=max(capacity[best]),
        slo_ms=scenario.slo.latency_ms,
        interval_s=scenario.control_interval_s,
        # Scenarios compress a day into period_s (default.yaml: one hour).
        day_s=float(scenario.workload.params.get("period_s", 86400.0)),
        max_down_fraction=float(max_down_fraction),
        action_kind=action_kind,
        sizing=sizing,
        base_windows=base_windows,
        memory_windows=memory_windows,
        fit_windows=fit_windows,
        lead_windows=lead_windows,
        crowd_factor=float(crowd_factor),
        burst_guard=float(burst_guard),
        guard_windows=max(1, round(guard_calm_s / scenario.control_interval_s)),
        calm_windows=max(1, round(CALM_S / scenario.control_interval_s)),
        totals=totals,
        gpu=tuple(gpu_groups(scenario)[p.name] for p in rt),
        mixed=capacity_of.mixes() if measure_mixes else None,
    )


MIXED_CAPACITIES = ("measured", "added")


def check_mixed_capacity(value: object) -> bool:
    """True for ``measured``, False for ``added``; anything else is a ValueError."""
    if value not in MIXED_CAPACITIES:
        raise ValueError(f"mixed_capacity must be 'added' or 'measured', got {value!r}")
    return value == "measured"


def measure_mixes_of(card: dict[str, object]) -> bool:
    """Whether the policy was trained with fleets that mix GPU types measured (session 10 on) or added up.

    A policy decodes its levels as it was trained: under the other capacity model the same level means a
    different fleet (``mixed.zip``, trained with mixes added up, bought more T4s when they were measured)."""
    features = card.get("features")
    return check_mixed_capacity(features.get("mixed_capacity", "added") if isinstance(features, dict) else "added")


def initial_levels(ctx: FeatureContext) -> list[int]:
    """Ladder index per pool a level policy starts from.

    ``moves``: INITIAL_LEVEL on the best pool, 0 elsewhere. ``fill``: INITIAL_LEVEL
    everywhere, which only reaches a pool once the cheaper ones are at their quota.
    """
    best = best_pool(ctx)
    start = LEVELS.index(ctx.initial_level)
    return [start if i == best or ctx.action_kind == "fill" else 0 for i in range(len(ctx.pools))]


def initial_state(ctx: FeatureContext) -> PolicyState:
    state: PolicyState = {"rates": [], "preempt": [0.0] * len(ctx.pools), "time_offset_s": 0.0}
    if ctx.action_kind in LEVEL_KINDS:
        state["level"] = initial_levels(ctx)
    if ctx.sizing == "burst" or ctx.sizing in PREDICTIVE_SIZINGS:
        state["ratios"] = []
    return state


def update_state(state: PolicyState, obs: Observation, ctx: FeatureContext) -> PolicyState:
    """Fold one observation into the feature history (pure: returns a new dict)."""
    rates = (list(state["rates"]) + [obs.arrival_rate])[-ctx.history:]
    # Decays over ~10 windows: "was this spot pool preempted recently".
    preempt = [0.9 * e + p.preemptions for e, p in zip(state["preempt"], obs.pools, strict=False)]
    out = {**state, "rates": rates, "preempt": preempt, "time_offset_s": state.get("time_offset_s", 0.0)}
    if ctx.sizing == "burst":
        out["ratios"] = remember(rates, state.get("ratios", []), ctx.base_windows, ctx.memory_windows)
    if ctx.sizing in PREDICTIVE_SIZINGS:  # as PredictivePolicy.decide
        out["ratios"] = record(rates, state.get("ratios", []), ctx.fit_windows, ctx.lead_windows, ctx.memory_windows)
    if ctx.burst_guard:  # windows since the last burst (or the start): see burst_guarded
        out["calm_run"] = 0 if burst_ratio(rates, ctx) >= ctx.burst_guard else int(state.get("calm_run", 0)) + 1
    return out


def forecast_rate(state: PolicyState) -> float:
    """The ``headroom`` rule's forecast of the state's rate history."""
    return forecast(list(state["rates"]))


def sizing_rate(state: PolicyState, ctx: FeatureContext) -> float:
    """The load every headroom level multiplies (see the module docstring's sizings)."""
    if ctx.sizing == "burst":
        return burst_size(list(state["rates"]), state.get("ratios", []), ctx.base_windows)[0]
    if ctx.sizing in PREDICTIVE_SIZINGS:
        size = predictive_size(state, ctx)
        return max(size, crowd_floor_rate(state, ctx)) if ctx.sizing == "crowd" else size
    return forecast_rate(state)


def predictive_size(state: PolicyState, ctx: FeatureContext) -> float:
    """The ``predictive`` rule's size: its margin x the load predicted a start-up ahead."""
    return margin(state.get("ratios", [])) * predict(list(state["rates"]), ctx.fit_windows, ctx.lead_windows)


def need_floor(state: PolicyState, ctx: FeatureContext) -> float:
    """The least req/s any level asks for: with ``crowd`` sizing the ``predictive`` size, so a learnt level can
    drop insurance, not the forecast; 0 otherwise."""
    return predictive_size(state, ctx) if ctx.sizing == "crowd" else 0.0


def level_need(level: float, rate: float, floor: float) -> float:
    """The req/s a headroom ``level`` asks the fleet to carry: ``level`` x the sizing ``rate``, at least ``floor``."""
    return max(level * rate, floor)


def crowd_floor_rate(state: PolicyState, ctx: FeatureContext) -> float:
    """``crowd`` sizing: the surge over the calm load the untrained policy holds capacity for."""
    return ctx.crowd_factor * calm_load(list(state["rates"])[-ctx.calm_windows:])


def burst_ratio(rates: list[float], ctx: FeatureContext) -> float:
    """The last window's rate over the calm load of the span ending with it, less three standard deviations
    of a window's Poisson count (so noise at low load is no burst); 0 before any load."""
    span = rates[-ctx.calm_windows:]
    calm = calm_load(span)
    if calm <= 0:
        return 0.0
    noise = 3.0 * math.sqrt(calm / ctx.interval_s)  # req/s: a window's count is Poisson(calm x interval)
    return max(0.0, span[-1] - noise) / calm


def burst_guarded(state: PolicyState, ctx: FeatureContext) -> str:
    """Why the burst guard holds this decision to the crowd insurance ("" when it does not).

    Trained ``crowd`` policies learnt to give up insurance on smooth loads, where it saves money, but also on bursty
    ones, which it is for: on 100 validation-range MMPP hours at 300 req/s the session-8 `default` policy kept the
    SLO on 37, its prior on all 100 (bench/burst_scan.py). It lost them two ways: levels below 1.0, and batch sizes
    below the pool's best (equal replicas, less throughput when a burst queues). So until ``guard_windows`` have
    passed without a burst of ``burst_guard`` x the calm load (since the start, too: a first burst comes
    unannounced), every pool's level is at least 1.0 and its batch size the one with the most SLO capacity, as the
    untrained policy decides. Ten calm minutes were too few: MMPP's calm spells are exponential (mean 4 minutes),
    and one in twelve lasts longer than ten.
    """
    if not ctx.burst_guard:
        return ""
    calm = int(state.get("calm_run", 0))
    if calm >= ctx.guard_windows:
        return ""
    # The count runs from the start too, so "without a burst" covers a run that has not yet seen one.
    return (f" (burst guard: {calm * ctx.interval_s / 60:.1f} of {ctx.guard_windows * ctx.interval_s / 60:g} min "
            f"without a {ctx.burst_guard:g}x burst)")


def _finite(x: float, default: float) -> float:
    return x if math.isfinite(x) else default


def features(obs: Observation, state: PolicyState, ctx: FeatureContext) -> np.ndarray:
    """The network's input for ``obs`` (``state`` already updated with it)."""
    rate = forecast_rate(state)
    ref = ctx.ref_capacity
    scale = max(rate, 0.05 * ref)  # avoid dividing by ~0 at idle; 5% of a replica
    history = list(state["rates"])[-N_HISTORY:]
    rates = history[-N_RATES:]
    rates = [rates[0]] * (N_RATES - len(rates)) + rates if rates else [0.0] * N_RATES
    peak = max(history) if history else 0.0
    mean = float(np.mean(history)) if history else 0.0
    std = float(np.std(history)) if history else 0.0
    cap_now = cap_target = 0.0
    for i, p in enumerate(obs.pools):
        c = ctx.cap(i, p.batch_size)
        cap_now += p.running * c
        cap_target += p.target * c
    phase = 2 * math.pi * ((obs.time_s + state.get("time_offset_s", 0.0)) % ctx.day_s) / ctx.day_s
    g = [r / scale for r in rates]  # shape of recent load (trend), scale-free
    g += [
        math.log1p(rate / ref),  # absolute level: matters at low load (integer replicas)
        math.log1p(rate / ref * 10) / 4,
        min(cap_now / scale, 5.0),  # running capacity over load
        min(cap_target / scale, 5.0),  # capacity once starting/pending replicas are up
        min(obs.queued_requests / (scale * ctx.interval_s), 5.0),  # backlog in windows of load
        min(_finite(obs.p50_ms, 0.0) / ctx.slo_ms, 5.0),
        min(_finite(obs.p95_ms, 0.0) / ctx.slo_ms, 5.0),
        min(_finite(obs.p99_ms, 0.0) / ctx.slo_ms, 5.0),
        1.0 - _finite(obs.slo_attainment, 1.0),
        min(obs.dropped / max(obs.arrivals, 1), 1.0),
        math.sin(phase),
        math.cos(phase),
        min(peak / scale, 5.0),  # 5-min peak over the forecast: headroom bursts have needed
        min(std / max(mean, 1e-9), 3.0),  # burstiness (coefficient of variation)
        min(len(history) / N_HISTORY, 1.0),  # how much history there is yet
    ]
    if ctx.sizing == "burst":
        size, ratio, _ = burst_size(list(state["rates"]), state.get("ratios", []), ctx.base_windows)
        g += [ratio / MAX_RATIO, min(size / scale, 5.0)]
    if ctx.sizing == "predictive":
        g += [margin(state.get("ratios", [])) / MAX_RATIO, min(sizing_rate(state, ctx) / scale, 5.0)]
    if ctx.sizing == "crowd":  # the hard minimum and the insurance above it, apart
        g += [margin(state.get("ratios", [])) / MAX_RATIO, min(predictive_size(state, ctx) / scale, 5.0),
              min(crowd_floor_rate(state, ctx) / scale, 5.0)]
    for i, p in enumerate(obs.pools):
        c = ctx.cap(i, p.batch_size)
        bs = ctx.batch_sizes[i]
        g += [
            min(p.running * c / scale, 5.0),
            min(p.starting * c / scale, 5.0),
            min(p.pending * c / scale, 5.0),
            min(p.draining * c / scale, 5.0),
            p.target / ctx.max_replicas[i],
            (bs.index(p.batch_size) if p.batch_size in bs else 0) / max(len(bs) - 1, 1),
            min(p.ongoing_requests / max(p.running * p.batch_size, 1), 5.0),
            min(p.queued_requests / (scale * ctx.interval_s), 5.0),
            min(state["preempt"][i], 3.0),
            float(ctx.spot[i]),
            min(ctx.price[i] / max(max(ctx.capacity[i]), 1e-9) / ctx.best_efficiency(), 5.0),  # $ per req/s
            min(max(ctx.capacity[i]) / ref, 5.0),
            min(ctx.max_replicas[i] * max(ctx.capacity[i]) / scale, 5.0),  # can this pool alone carry the load
        ]
        if ctx.action_kind in LEVEL_KINDS:
            g.append(LEVELS[state["level"][i]] / LEVELS[-1])  # the headroom this pool is held at
    out = np.asarray(g, dtype=np.float32)
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=5.0, neginf=-5.0), -10.0, 10.0)


def action_nvec(ctx: FeatureContext) -> list[int]:
    """MultiDiscrete sizes: per pool a headroom move (or multiplier) and a batch-size index."""
    n = len(MOVES) if ctx.action_kind in LEVEL_KINDS else len(MULTIPLIERS)
    out: list[int] = []
    for _ in ctx.pools:
        out += [n, ctx.max_batches]
    return out


def action_mask(obs: Observation, ctx: FeatureContext) -> np.ndarray:
    """Allowed choices, flattened as sb3-contrib expects for MultiDiscrete.

    Forbidden: batch sizes the pool does not allow or that cannot meet the SLO
    (capacity 0). Every multiplier stays allowed: 0x on a pool with
    min_replicas > 0 means "down to the minimum".
    """
    parts: list[np.ndarray] = []
    for i, _ in enumerate(ctx.pools):
        m = np.ones(len(MOVES) if ctx.action_kind in LEVEL_KINDS else len(MULTIPLIERS), dtype=bool)
        b = np.zeros(ctx.max_batches, dtype=bool)
        b[: len(ctx.batch_sizes[i])] = [c > 0 for c in ctx.capacity[i]]
        if not b.any():
            b[0] = True
        parts += [m, b]
    return np.concatenate(parts)


def cost_order(ctx: FeatureContext) -> list[int]:
    """Pools by dollars per req/s of SLO capacity, cheapest first."""
    return sorted(range(len(ctx.pools)), key=lambda i: ctx.price[i] / max(max(ctx.capacity[i]), 1e-9))


def ideal_usd_per_hour(ctx: FeatureContext, rate: float) -> float:
    """Dollars per hour of just enough SLO capacity for ``rate``: fractional replicas, cheapest first, within quotas.

    The reward's cost unit. Without quotas it is ``rate`` x the best price per req/s; where a pool's quota
    binds (``mixed-large``: the L4s cannot carry the peak), the rest is priced on the next pool, so paying for
    the A100 the load needs does not look like waste.
    """
    usd, need = 0.0, rate
    for i in cost_order(ctx):
        cap = max(ctx.capacity[i])
        if need <= 0 or cap <= 0:
            continue
        n = min(need / cap, float(ctx.max_replicas[i]))
        usd += n * ctx.price[i]
        need -= n * cap
    return usd


def best_pool(ctx: FeatureContext) -> int:
    """The pool with the fewest dollars per req/s of SLO capacity."""
    return cost_order(ctx)[0]


def prior_logits(ctx: FeatureContext, strength: float) -> np.ndarray:
    """Initial action-logit bias: 1.2x the need on the most cost-efficient pool at its best
    batch size, the other pools at zero (their minimum); for ``moves`` and ``fill``,
    keeping the initial levels (for ``fill``: that rule with spill-over at quotas).

    A warm start for exploration, not a rule: at ``strength`` 2.5 the prior
    choice starts with ~45% probability and PPO moves away from it freely.
    Without it, most of a 30-minute budget on 2 cores goes to discovering
    that an A100 replica should not be kept for 25 req/s.
    """
    out: list[np.ndarray] = []
    best = best_pool(ctx)
    for i in range(len(ctx.pools)):
        if ctx.action_kind in LEVEL_KINDS:
            m = np.zeros(len(MOVES))
            m[MOVES.index(0)] = strength
        else:
            m = np.zeros(len(MULTIPLIERS))
            m[MULTIPLIERS.index(1.2 if i == best else 0.0)] = strength
        b = np.zeros(ctx.max_batches)
        b[int(np.argmax(ctx.capacity[i]))] = strength
        out += [m, b]
    return np.concatenate(out).astype(np.float32)


def decode_action(action: np.ndarray | list[int], obs: Observation, state: PolicyState,
                  ctx: FeatureContext) -> tuple[Decision, PolicyState]:
    """Turn a network action into target replicas and batch sizes per pool (and the new headroom levels)."""
    if ctx.action_kind in LEVEL_KINDS:
        return _decode_levels(action, state, ctx)
    return _decode_absolute(action, obs, state, ctx), state


def _batch_of(ctx: FeatureContext, i: int, bi: int) -> int:
    bs = ctx.batch_sizes[i]
    b = bs[min(bi, len(bs) - 1)]
    if ctx.capacity[i][bs.index(b)] <= 0:  # masked in training; be safe for a stray action
        b = bs[int(np.argmax(ctx.capacity[i]))]
    return b


def _decode_levels(action: np.ndarray | list[int], state: PolicyState,
                   ctx: FeatureContext) -> tuple[Decision, PolicyState]:
    rate = sizing_rate(state, ctx)
    floor = need_floor(state, ctx)
    levels = list(state.get("level") or initial_levels(ctx))
    fill = ctx.action_kind == "fill"
    replicas: dict[str, int] = {}
    batch: dict[str, int] = {}
    why: dict[int, str] = {}
    order = cost_order(ctx) if fill else list(range(len(ctx.pools)))
    guarded = burst_guarded(state, ctx)
    needs: list[float] = []
    for i in order:
        name = ctx.pools[i]
        move = MOVES[min(int(action[2 * i]), len(MOVES) - 1)]
        levels[i] = min(max(levels[i] + move, LEVELS.index(1.0) if guarded else 0), len(LEVELS) - 1)
        bi = int(np.argmax(ctx.capacity[i])) if guarded else int(action[2 * i + 1])
        b = batch[name] = _batch_of(ctx, i, bi)
        needs.append(level_need(LEVELS[levels[i]], rate, floor))
        if not fill:  # each pool sized alone for its own level
            replicas[name] = min(max(replicas_for(needs[-1], ctx.carry(i, b)), ctx.min_replicas[i]),
                                 ctx.max_replicas[i])
        why[i] = f"{name}: {LEVELS[levels[i]]:g}x ({move:+d}) of {rate:.0f} req/s{guarded}"
        if needs[-1] > LEVELS[levels[i]] * rate + 1e-9:
            why[i] += f" (the forecast's {needs[-1]:.0f})"
    if fill:  # as ``headroom`` fills: cheapest first, the replicas of all pools pooled
        carry = {ctx.pools[i]: ctx.carry(i, batch[ctx.pools[i]]) for i in order}
        replicas = fill_fleet(needs, [ctx.pools[i] for i in order], carry, dict(zip(ctx.pools, ctx.min_replicas)),
                              dict(zip(ctx.pools, ctx.max_replicas)), dict(zip(ctx.pools, ctx.gpu)), ctx.mixed, batch)
    for i in order:
        why[i] += f" -> {replicas[ctx.pools[i]]} @b{batch[ctx.pools[i]]}"
    order = list(range(len(ctx.pools)))
    return (Decision({ctx.pools[i]: replicas[ctx.pools[i]] for i in order}, "rl: " + "; ".join(why[i] for i in order),
                     {ctx.pools[i]: batch[ctx.pools[i]] for i in order}), {**state, "level": levels})


def _decode_absolute(action: np.ndarray | list[int], obs: Observation, state: PolicyState,
                     ctx: FeatureContext) -> Decision:
    rate = sizing_rate(state, ctx)
    replicas: dict[str, int] = {}
    batch: dict[str, int] = {}
    why: list[str] = []
    for i, name in enumerate(ctx.pools):
        k = int(action[2 * i])
        b = batch[name] = _batch_of(ctx, i, int(action[2 * i + 1]))
        current = obs.pools[i].target
        if k == HOLD:
            replicas[name] = current
            why.append(f"{name}: hold {current} @b{b}")
            continue
        mult = MULTIPLIERS[k]
        need = mult * rate / max(ctx.cap(i, b), 1e-9)
        n = int(math.ceil(need - 1e-6))
        if n < current and ctx.max_down_fraction < 1.0:
            n = max(n, current - max(1, int(current * ctx.max_down_fraction)))
        n = min(max(n, ctx.min_replicas[i]), ctx.max_replicas[i])
        replicas[name] = n
        why.append(f"{name}: {mult:g}x of {rate:.0f} req/s -> {n} @b{b}")
    return Decision(replicas, "rl: " + "; ".join(why), batch)
