"""The WorldCup 98 site's per-minute counts as a workload: daily days, and match-day crowds.

``traces/worldcup98_per_minute_to_0625.csv`` spans 1998-04-30 to 1998-06-25 (days 0-56). Days 0-39 are the
build-up: a daily and weekly rhythm, a few short spikes (days 11, 17, 18). Days 40-55 are the group stage:
every day two or three match crowds climb for about two hours to 3-8x the day's median
(:mod:`autotune.workload.crowds` finds and fits them).

Which days are whose: the benchmark holds out days 0-1 (``worldcup-daily``: a day compressed into an hour,
like ``nasa-day0``) and days 53-55 (``worldcup-crowds``: four real hours around the largest crowd of days 53
and 55); training uses days 2-39 (daily) and 40-52 (crowds), never a held-out day.

A crowd case compresses four real hours into its hour (``time_scale`` 0.25) rather than replaying one real
hour: a match crowd rises for about two hours, so a real hour would show only part of its rise and none of its
end; at 4x it still rises for about half an hour, far slower than a replica's start-up, so the compression
does not make the crowd unreactable.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np

from autotune.workload import synthetic
from autotune.workload.crowds import DAY_S, WORLDCUP
from autotune.workload.traces import RateTrace, read_trace

HELD_OUT_DAYS = ((0, 2), (53, 56))  # [first, last) ranges of days the benchmark uses
TRAIN_DAILY_DAYS = (2, 40)
TRAIN_CROWD_DAYS = (40, 53)
DAILY_SCALE = 1 / 24  # a day in an hour
CROWD_SCALE = 0.25  # four real hours in an hour
# An hour before the largest crowd of each held-out crowd day starts (crowds.detect_crowds: 53.69, 55.69).
CROWD_WINDOWS = {"day53": 53.65, "day55": 55.65}


@cache
def trace() -> RateTrace:
    tr = read_trace(WORLDCUP)
    assert isinstance(tr, RateTrace)
    return tr


def held_out(day: float, span_days: float) -> bool:
    """Whether [day, day + span_days) touches a held-out day."""
    return any(day < hi and day + span_days > lo for lo, hi in HELD_OUT_DAYS)


def rate_slice(tr: RateTrace, day: float, mean: float, duration_s: float, time_scale: float,
               rng: np.random.Generator) -> np.ndarray:
    """Arrival times of ``tr`` from ``day`` on, time-scaled, rescaled to ``mean`` req/s over ``duration_s``."""
    t0 = day * DAY_S
    keep = (tr.start_s >= t0) & (tr.start_s < t0 + duration_s / time_scale)
    start = (tr.start_s[keep] - t0) * time_scale
    width = tr.width_s[keep] * time_scale
    expected = tr.counts[keep] * (mean * duration_s / max(float(tr.counts[keep].sum()), 1.0))
    base = np.floor(expected)
    n = (base + (rng.random(expected.size) < expected - base)).astype(np.int64)
    t = synthetic.spread_counts(n, start, width, rng)
    return t[t < duration_s]


def sample(mean: float, duration_s: float, p: Mapping[str, float],
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """``day`` (fractional, from 0) and ``time_scale`` (default a day in an hour) pick the slice."""
    return rate_slice(trace(), p.get("day", 0.0), mean, duration_s, p.get("time_scale", DAILY_SCALE), rng), None
