"""Crowds: runs of load far above the day's median, as at the WorldCup 98 site's match times.

:func:`detect_crowds` finds them in a rate trace (runs above ``k`` x the rolling 24 h median, runs less than
10 minutes apart merged, runs shorter than 10 minutes dropped); :func:`fit_crowds` fits lognormal laws to
their size (peak / median), rise (start to peak) and fall (peak to end). :func:`crowds` is a generator: a
flat or daily base with crowd events drawn from those laws, scaled to the mean rate asked for.

The fitted constants below are what ``python -m autotune.workload.crowds`` prints for the shipped trace
``traces/worldcup98_per_minute_to_0625.csv`` (tests/sim/test_families.py checks they still agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from autotune.paths import TRACES
from autotune.workload import synthetic
from autotune.workload.traces import RateTrace, read_trace

WORLDCUP = TRACES / "worldcup98_per_minute_to_0625.csv"
DAY_S = 86400.0
K = 2.0  # above 2x the median: the match crowds reach 3-8x, the quiet days' evening peaks stay under 2x
MERGE_S = 600.0
MIN_S = 600.0


@dataclass(frozen=True)
class Crowd:
    start_s: float
    size: float  # peak rate / the rolling median there
    rise_s: float  # start to peak
    fall_s: float  # peak to end


@dataclass(frozen=True)
class CrowdLaw:
    """Lognormal laws (of the natural log: mean ``mu``, deviation ``sigma``) and how often crowds come."""

    n: int
    size_mu: float
    size_sigma: float
    rise_mu: float
    rise_sigma: float
    fall_mu: float
    fall_sigma: float
    per_hour: float  # crowds per hour over the days that have any


def rolling_median(trace: RateTrace, window_s: float = DAY_S, step_s: float = 3600.0) -> np.ndarray:
    """The median rate over a centred window, at every bin (computed hourly and interpolated: it moves slowly)."""
    rate = trace.counts / trace.width_s
    t = trace.start_s
    centers = np.arange(0.0, t[-1] + step_s, step_s)
    med = np.array([np.median(rate[(t >= c - window_s / 2) & (t < c + window_s / 2)]) for c in centers])
    return np.interp(t, centers, np.maximum(med, 1e-9))


def detect_crowds(trace: RateTrace, k: float = K) -> list[Crowd]:
    rate = trace.counts / trace.width_s
    t, w = trace.start_s, trace.width_s
    r = rate / rolling_median(trace)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (r > k).astype(np.int8), [0]])))
    runs: list[list[int]] = []
    for s, e in zip(edges[::2], edges[1::2], strict=True):
        if runs and t[s] - (t[runs[-1][1] - 1] + w[runs[-1][1] - 1]) < MERGE_S:
            runs[-1][1] = int(e)
        else:
            runs.append([int(s), int(e)])
    out = []
    for s, e in runs:
        end = float(t[e - 1] + w[e - 1])
        if end - t[s] < MIN_S:
            continue
        peak = s + int(np.argmax(r[s:e]))
        out.append(Crowd(float(t[s]), float(r[peak]), float(t[peak] + w[peak] - t[s]), end - float(t[peak])))
    return out


def fit_crowds(crowds: list[Crowd]) -> CrowdLaw:
    """Lognormal maximum likelihood (mean and deviation of the logs) for size, rise and fall."""
    def ln(xs: list[float]) -> tuple[float, float]:
        a = np.log(np.asarray(xs))
        return float(a.mean()), float(a.std())

    days = {int(c.start_s // DAY_S) for c in crowds}
    sm, ss = ln([c.size for c in crowds])
    rm, rs = ln([c.rise_s for c in crowds])
    fm, fs = ln([c.fall_s for c in crowds])
    return CrowdLaw(len(crowds), sm, ss, rm, rs, fm, fs, len(crowds) / (24.0 * max(len(days), 1)))


def fit_worldcup(path: Path = WORLDCUP) -> CrowdLaw:
    trace = read_trace(path)
    assert isinstance(trace, RateTrace)
    return fit_crowds(detect_crowds(trace))


# python -m autotune.workload.crowds, on the shipped WorldCup trace: 38 crowds on 20 days; sizes 2.1-42x the
# median (geometric mean 4.0x), rises 1-139 min (geometric mean 39 min, median 103), falls 1-209 min (geometric
# mean 18 min). The match crowds of days 40-55 climb for about two hours through a match and drop within half an
# hour of its end; the few short spikes before the tournament (days 11, 17, 18) give the laws their spread.
FIT = CrowdLaw(n=38, size_mu=1.3858, size_sigma=0.5587, rise_mu=7.7578, rise_sigma=1.5469, fall_mu=7.0118,
               fall_sigma=1.2322, per_hour=0.0792)


def draw(law: CrowdLaw, n: int, rng: np.random.Generator, min_size: float = 1.0) -> tuple[np.ndarray, ...]:
    """``n`` crowds' sizes, rises and falls (s) from the law; sizes at least ``min_size``."""
    size = np.maximum(rng.lognormal(law.size_mu, law.size_sigma, n), min_size)
    rise = np.maximum(rng.lognormal(law.rise_mu, law.rise_sigma, n), 60.0)
    fall = np.maximum(rng.lognormal(law.fall_mu, law.fall_sigma, n), 60.0)
    return size, rise, fall


def crowds(mean: float, duration_s: float, p: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """A base load with crowds: rise linearly to ``size`` x the base, fall linearly back.

    Params: ``compress`` divides the fitted rise and fall times and multiplies the rate of crowds (4 puts a
    match crowd, about 2.5 h, into 40 min); ``per_hour`` crowds per (compressed) hour, at least one an
    episode; ``amplitude``/``period_s`` a daily base (0: flat). Crowds start uniformly in the episode's first
    80%. The curve is scaled so its mean is ``mean``.
    """
    compress = p.get("compress", 1.0)
    per_hour = p.get("per_hour", FIT.per_hour * compress)
    t = np.arange(0.0, duration_s, synthetic.BIN_S)
    base = 1.0 + p.get("amplitude", 0.0) * np.sin(2 * np.pi * t / p.get("period_s", DAY_S / compress) - np.pi / 2)
    n = max(1, int(rng.poisson(per_hour * duration_s / 3600.0)))
    size, rise, fall = draw(FIT, n, rng, p.get("min_size", 1.0))
    rise, fall = rise / compress, fall / compress
    start = rng.uniform(0.0, 0.8 * duration_s, n)
    bump = np.zeros_like(t)
    for s0, k, r, f in zip(start, size, rise, fall, strict=True):
        up = np.clip((t - s0) / r, 0.0, 1.0)
        down = np.clip(1.0 - (t - s0 - r) / f, 0.0, 1.0)
        bump = np.maximum(bump, (k - 1.0) * np.where(t < s0 + r, up, down))
    curve = base * (1.0 + bump)
    return mean * curve / max(float(curve.mean()), 1e-12)


def sample(mean: float, duration_s: float, p: Mapping[str, float],
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    return synthetic.sample_poisson(crowds(mean, duration_s, p, rng), synthetic.BIN_S, None, rng), None


if __name__ == "__main__":
    law = fit_worldcup()
    print(", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in asdict(law).items()))
    found = detect_crowds(read_trace(WORLDCUP))  # type: ignore[arg-type]
    print(f"{len(found)} crowds on {len({int(c.start_s // DAY_S) for c in found})} days; sizes "
          f"{min(c.size for c in found):.1f}-{max(c.size for c in found):.0f}x, rises "
          f"{min(c.rise_s for c in found) / 60:.0f}-{max(c.rise_s for c in found) / 60:.0f} min, falls "
          f"{min(c.fall_s for c in found) / 60:.0f}-{max(c.fall_s for c in found) / 60:.0f} min")
