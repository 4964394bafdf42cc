"""What a trained network sees: the per-scenario context, the policy state, and the feature vector.

The gym env (training) and :class:`autotune.rl.policy.RLPolicy` (what-if, live controller) both call
:func:`update_state` then :func:`features`, so a network sees the same numbers in both. The feature history
(recent arrival rates, preemptions, the predictive rule's ratios, the headroom levels) lives in a
JSON-friendly state dict, as the Policy protocol requires.

Loads are expressed relative to SLO capacity (:mod:`autotune.policies.sizing`) so one policy serves 10 and
1,000 req/s alike. Every headroom level multiplies a *sizing* load (the card's ``decoding.sizing``):

- ``predictive``: the ``predictive`` rule's margin x predicted load (a robust trend over the start-up lead,
  the margin the 95th percentile of its recent actual/predicted ratios; :mod:`autotune.policies.predictive`).
- ``crowd``: the larger of that and ``crowd_factor`` x the calm load (the median window rate of the last
  10 minutes, :mod:`autotune.policies.crowd`), with the ``predictive`` size as a hard minimum
  (:func:`need_floor`): a level below 1.0 gives up insurance above the forecast, never the forecast itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from autotune.core import burst
from autotune.core.types import Observation, PolicyState
from autotune.policies.burst import MAX_RATIO
from autotune.policies.crowd import CALM_S, CROWD_DEFAULT, calm_load
from autotune.policies.headroom import dispersion_seen, forecast
from autotune.policies.predictive import history as predictive_history
from autotune.policies.predictive import margin, predict, record
from autotune.policies.predictive import windows as predictive_windows
from autotune.policies.sizing import Capacity, MixFn, capacity_table, fleet_size_limit, gpu_groups
from autotune.scenario import Scenario

Sizing = Literal["predictive", "crowd"]
SIZINGS: tuple[Sizing, ...] = ("predictive", "crowd")

N_RATES = 6  # windows of arrival-rate history fed directly (60 s at the default 10 s interval)
N_HISTORY = 30  # windows kept for burstiness features (5 min): how much headroom bursts have needed
GUARD_CALM_S = 1800.0  # burst guard default: calm this long before a crowd policy may give up insurance
# The headroom ladder a pool's level (an index, kept in the policy state) points into. Every pool starts at
# 1.0, where the untrained policy is its sizing's rule.
LEVELS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.2, 1.3, 1.45, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0)
INITIAL_LEVEL = 1.0
GLOBAL_FEATURES = N_RATES + 15 + 2  # + 1 with ``crowd`` sizing
POOL_FEATURES = 14


@dataclass(frozen=True)
class FeatureContext:
    """Per-scenario constants the features and actions need (capacities, prices, bounds, the decoding)."""

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
    # req/s n replicas carry within the SLO, [pool][batch index][n], n up to the pool's GPU group's quota
    totals: tuple[tuple[tuple[float, ...], ...], ...]
    gpu: tuple[str, ...]  # per pool, its GPU type: same-GPU pools pool as one fleet
    mixed: MixFn | None  # what fleets that mix GPU types carry; None: each type's capacity added up
    sizing: Sizing = "predictive"
    fit_windows: int = N_HISTORY  # the predictive rule's trend fit, start-up lead and ratio memory, in windows
    lead_windows: int = 15
    memory_windows: int = 180
    crowd_factor: float = CROWD_DEFAULT  # ``crowd``: the surge over the calm load insured at level 1.0
    calm_windows: int = 60  # ``crowd``: windows the calm load is the median of
    burst_guard: float = 0.0  # ``crowd``: levels below 1.0 only after no burst this many x calm (0: off)
    guard_windows: int = 180  # ... for this many windows (actions.burst_guarded)
    # (pool index, batch, dispersion, swing) -> what 0..N replicas carry under arrivals that bursty
    bursty: Callable[[int, int, float, float], tuple[float, ...]] | None = None

    @property
    def max_batches(self) -> int:
        return max(len(b) for b in self.batch_sizes)

    @property
    def global_features(self) -> int:
        return GLOBAL_FEATURES + (self.sizing == "crowd")

    @property
    def history(self) -> int:
        """Rate windows kept in the state: what the features, the trend fit and the calm load look back on."""
        calm = self.calm_windows if self.sizing == "crowd" else 0
        return max(N_HISTORY, predictive_history(self.fit_windows, self.lead_windows), calm)

    @property
    def obs_size(self) -> int:
        return self.global_features + POOL_FEATURES * len(self.pools)

    def cap(self, pool: int, batch: int) -> float:
        bs = self.batch_sizes[pool]
        return self.capacity[pool][bs.index(batch)] if batch in bs else 0.0

    def carry(self, pool: int, batch: int, shape: tuple[float, float] = (1.0, 0.0)) -> tuple[float, ...]:
        """What 0..N replicas of ``pool`` carry at ``batch``, under arrivals of that (dispersion, swing)."""
        d = (burst.bucket(shape[0]), burst.bucket_swing(shape[1]))
        if self.bursty is not None and d != (1.0, 0.0) and self.cap(pool, batch) > 0:
            return self.bursty(pool, batch, *d)
        return self.totals[pool][self.batch_sizes[pool].index(batch)]

    def best_efficiency(self) -> float:
        """Cheapest dollars per hour per req/s of SLO capacity over all pools."""
        return min(p / max(c) for p, c in zip(self.price, self.capacity, strict=False) if max(c) > 0)

    def cost_order(self) -> list[int]:
        """Pools by dollars per req/s of SLO capacity, cheapest first: the order ``fill`` sizes them in."""
        return sorted(range(len(self.pools)), key=lambda i: self.price[i] / max(max(self.capacity[i]), 1e-9))


def check_burst_guard(ratio: object, calm_s: object) -> tuple[float, float]:
    """(burst ratio, calm seconds) of a burst guard, or ValueError naming the bad one."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (ratio == 0 or 1.0 < ratio <= 100.0):
        raise ValueError(f"burst_guard must be 0 (off) or a number above 1 and at most 100 (got {ratio!r})")
    if isinstance(calm_s, bool) or not isinstance(calm_s, (int, float)) or not 0 < calm_s <= 86400.0:
        raise ValueError(f"guard_calm_s must be seconds, above 0 and at most 86400 (got {calm_s!r})")
    return float(ratio), float(calm_s)


def make_context(scenario: Scenario, capacity_of: Capacity, sizing: Sizing = "predictive",
                 crowd_factor: float = CROWD_DEFAULT, burst_guard: float = 0.0,
                 guard_calm_s: float = GUARD_CALM_S, measure_mixes: bool = True) -> FeatureContext:
    if sizing not in SIZINGS:
        raise ValueError(f"unknown sizing {sizing!r} (known: {', '.join(SIZINGS)})")
    if burst_guard and sizing != "crowd":  # only crowd levels below 1.0 give up insurance
        raise ValueError(f"a burst guard needs sizing 'crowd' (got {sizing!r})")
    check_burst_guard(burst_guard, guard_calm_s)
    caps = capacity_table(capacity_of, scenario)
    rt = scenario.runtime_pools()
    capacity = tuple(tuple(caps[p.name][b] for b in p.spec.batch_sizes) for p in rt)
    usable = [i for i, c in enumerate(capacity) if max(c) > 0]
    best = min(usable, key=lambda i: rt[i].price_per_hour / max(capacity[i]))
    reach = {p.name: fleet_size_limit(scenario, p) for p in rt}  # curves run over the pool's whole GPU group
    totals = tuple(tuple(capacity_of.fleet(p, b, reach[p.name]) if c > 0 else (0.0,) * (reach[p.name] + 1)
                         for b, c in zip(p.spec.batch_sizes, caps_i, strict=True))
                   for p, caps_i in zip(rt, capacity, strict=True))
    fit_windows, lead_windows, memory_windows = predictive_windows(scenario, rt[best].name)

    def bursty(i: int, batch: int, dispersion: float, swing: float) -> tuple[float, ...]:
        return capacity_of.fleet(rt[i], batch, reach[rt[i].name], dispersion, swing)

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
        totals=totals,
        gpu=tuple(gpu_groups(scenario)[p.name] for p in rt),
        mixed=capacity_of.mixes() if measure_mixes else None,
        sizing=sizing,
        fit_windows=fit_windows,
        lead_windows=lead_windows,
        memory_windows=memory_windows,
        crowd_factor=float(crowd_factor),
        calm_windows=max(1, round(CALM_S / scenario.control_interval_s)),
        burst_guard=float(burst_guard),
        guard_windows=max(1, round(guard_calm_s / scenario.control_interval_s)),
        bursty=bursty,
    )


def initial_state(ctx: FeatureContext) -> PolicyState:
    return {"rates": [], "preempt": [0.0] * len(ctx.pools), "time_offset_s": 0.0,
            "level": [LEVELS.index(INITIAL_LEVEL)] * len(ctx.pools), "ratios": []}


def update_state(state: PolicyState, obs: Observation, ctx: FeatureContext) -> PolicyState:
    """Fold one observation into the feature history (pure: returns a new dict)."""
    rates = (list(state["rates"]) + [obs.arrival_rate])[-ctx.history:]
    # Decays over ~10 windows: "was this spot pool preempted recently".
    preempt = [0.9 * e + p.preemptions for e, p in zip(state["preempt"], obs.pools, strict=False)]
    out = {**state, "rates": rates, "preempt": preempt, "time_offset_s": state.get("time_offset_s", 0.0),
           # as PredictivePolicy.decide, so the untrained policy's margin is the rule's
           "ratios": record(rates, state.get("ratios", []), ctx.fit_windows, ctx.lead_windows, ctx.memory_windows)}
    out["dispersion"] = dispersion_seen(obs, state)[0]  # the fill sizes with capacity under these bursts
    if ctx.burst_guard:  # windows since the last burst (or the start): see actions.burst_guarded
        out["calm_run"] = 0 if burst_ratio(rates, ctx) >= ctx.burst_guard else int(state.get("calm_run", 0)) + 1
    return out


def forecast_rate(state: PolicyState) -> float:
    """The ``headroom`` rule's forecast of the state's rate history: the unit every feature is scaled by."""
    return forecast(list(state["rates"]))


def predictive_size(state: PolicyState, ctx: FeatureContext) -> float:
    """The ``predictive`` rule's size: its margin x the load predicted a start-up ahead."""
    return margin(state.get("ratios", [])) * predict(list(state["rates"]), ctx.fit_windows, ctx.lead_windows)


def crowd_floor_rate(state: PolicyState, ctx: FeatureContext) -> float:
    """``crowd`` sizing: the surge over the calm load the untrained policy holds capacity for."""
    return ctx.crowd_factor * calm_load(list(state["rates"])[-ctx.calm_windows:])


def sizing_rate(state: PolicyState, ctx: FeatureContext) -> float:
    """The load every headroom level multiplies (see the module docstring)."""
    size = predictive_size(state, ctx)
    return max(size, crowd_floor_rate(state, ctx)) if ctx.sizing == "crowd" else size


def need_floor(state: PolicyState, ctx: FeatureContext) -> float:
    """The least req/s any level asks for: with ``crowd`` sizing the ``predictive`` size, so a learnt level
    trades the insurance, not the forecast; 0 otherwise."""
    return predictive_size(state, ctx) if ctx.sizing == "crowd" else 0.0


def burst_ratio(rates: list[float], ctx: FeatureContext) -> float:
    """The last window's rate over the calm load of the span ending with it, less three standard deviations
    of a window's Poisson count (so noise at low load is no burst); 0 before any load."""
    span = rates[-ctx.calm_windows:]
    calm = calm_load(span)
    if calm <= 0:
        return 0.0
    noise = 3.0 * math.sqrt(calm / ctx.interval_s)  # req/s: a window's count is Poisson(calm x interval)
    return max(0.0, span[-1] - noise) / calm


def _finite(x: float, default: float) -> float:
    return x if math.isfinite(x) else default


def features(obs: Observation, state: PolicyState, ctx: FeatureContext) -> np.ndarray:
    """The network's input for ``obs`` (``state`` already updated with it); the table in docs/training.md."""
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
        margin(state.get("ratios", [])) / MAX_RATIO,
        min(predictive_size(state, ctx) / scale, 5.0),
    ]
    if ctx.sizing == "crowd":  # the insurance above the hard minimum, apart from it
        g.append(min(crowd_floor_rate(state, ctx) / scale, 5.0))
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
            LEVELS[state["level"][i]] / LEVELS[-1],  # the headroom this pool is held at
        ]
    out = np.asarray(g, dtype=np.float32)
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=5.0, neginf=-5.0), -10.0, 10.0)
