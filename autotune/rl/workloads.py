"""Domain randomization: which arrivals an RL episode sees, with held-out seeds and traces.

Training episodes draw a trace family (the five synthetic generators with
random shapes, or a slice of the NASA trace from day 2 onward) and a mean load
log-uniform in the scenario's ``training.mean_rate_range`` (default 10..1,000
req/s). What evaluation uses is never trained on:

- synthetic seeds: training builds arrivals with seeds >= ``TRAIN_SEED_BASE``;
  evaluation (and ``autotune whatif``, whose seeds are small) uses 0..999;
- traces: both Azure traces are never used in training; of NASA, training uses
  days 2..57 only, so day 0 (what ``whatif --trace ... --time-scale 0.04167``
  replays) and day 1 are held out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autotune.paths import TRACES
from autotune.scenario import Scenario, WorkloadSpec
from autotune.workload import synthetic
from autotune.workload.arrivals import Arrivals, build_arrivals
from autotune.workload.traces import RateTrace, read_trace

TRAIN_SEED_BASE = 10_000
GENERATORS = ("poisson", "daily", "mmpp", "flash", "ramp")
NASA = TRACES / "nasa_http_1995_per_minute.csv"
NASA_TRAIN_DAYS = (2, 58)  # [first, last) day used for training; days 0-1 are held out
DAY_S = 86400.0
TRAINED_TRACES = (f"{NASA.name} days {NASA_TRAIN_DAYS[0]}..{NASA_TRAIN_DAYS[1] - 1}",)
HELD_OUT_SEEDS = (0, 999)  # first and last: the benchmark's and ``autotune whatif``'s
HELD_OUT_TRACES = ("azure_llm_conv_2023.csv", "azure_llm_code_2023.csv", f"{NASA.name} days 0-1")


@dataclass(frozen=True)
class Episode:
    arrivals: Arrivals
    label: str
    time_offset_s: float = 0.0  # where in the (compressed) day the episode starts


def _params(generator: str, rng: np.random.Generator, duration_s: float, day_s: float) -> tuple[dict, float]:
    """Random shape parameters for a generator, and the time-of-day offset they imply."""
    if generator == "daily":
        offset = float(rng.uniform(0, day_s))
        # Start the sine at ``offset`` into the day (the generator starts at the trough).
        return {"amplitude": float(rng.uniform(0.2, 0.8)), "period_s": day_s,
                "phase": -math.pi / 2 + 2 * math.pi * offset / day_s}, offset
    if generator == "mmpp":
        return {"burst_factor": float(rng.uniform(1.5, 4.0)), "mean_burst_s": float(rng.uniform(30, 180)),
                "mean_calm_s": float(rng.uniform(120, 480))}, 0.0
    if generator == "flash":
        return {"spike_factor": float(rng.uniform(1.5, 5.0)), "spike_start_frac": float(rng.uniform(0.15, 0.8)),
                "spike_duration_s": float(rng.uniform(60, 400)), "ramp_s": float(rng.uniform(10, 180))}, 0.0
    if generator == "ramp":
        return {"spread": float(rng.uniform(0.2, 0.9))}, 0.0
    return {}, 0.0


def nasa_slice(day: float, mean_rate: float, duration_s: float, time_scale: float,
               rng: np.random.Generator) -> Arrivals:
    """NASA arrivals from ``day`` (fractional) on, time-compressed and rescaled to ``mean_rate``."""
    trace = read_trace(NASA)
    assert isinstance(trace, RateTrace)
    t0 = day * DAY_S
    span = duration_s / time_scale
    keep = (trace.start_s >= t0) & (trace.start_s < t0 + span)
    start = (trace.start_s[keep] - t0) * time_scale
    width = trace.width_s[keep] * time_scale
    expected = trace.counts[keep] * (mean_rate * duration_s / max(float(trace.counts[keep].sum()), 1.0))
    base = np.floor(expected)
    n = (base + (rng.random(expected.size) < expected - base)).astype(np.int64)
    t = synthetic.spread_counts(n, start, width, rng)
    t = t[t < duration_s]
    return Arrivals(t, np.zeros(t.size, dtype=np.float32), float(duration_s), f"{NASA.name}@day{day:.2f}")


def sample_training_episode(scenario: Scenario, rng: np.random.Generator, duration_s: float,
                            day_s: float) -> Episode:
    """One randomized training episode (never a held-out seed or trace)."""
    lo, hi = scenario.training.mean_rate_range
    rate = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    seed = TRAIN_SEED_BASE + int(rng.integers(0, 2**31))
    if rng.random() < 0.2:
        day = float(rng.uniform(NASA_TRAIN_DAYS[0], NASA_TRAIN_DAYS[1] - 1))
        scale = 1 / 24  # a day in an hour, like the synthetic daily scenarios
        arr = nasa_slice(day, rate, duration_s, scale, np.random.default_rng([seed, 0x7A5A]))
        return Episode(arr, f"nasa day {day:.2f} @ {rate:.0f} req/s", (day * DAY_S * scale) % day_s)
    gen = GENERATORS[int(rng.integers(len(GENERATORS)))]
    params, offset = _params(gen, rng, duration_s, day_s)
    spec = WorkloadSpec(kind="synthetic", generator=gen, mean_rate=rate, duration_s=duration_s, params=params)
    arr = build_arrivals(scenario.model_copy(update={"workload": spec}), seed)
    return Episode(arr, f"{gen} @ {rate:.0f} req/s seed {seed}", offset)
