"""Pure fits of a pool's service time, replica start-up and traffic from windowed Serve metrics.

Ray Serve records a batch's size and its execution time in two separate histograms
(``serve_actual_batch_size`` and ``serve_batch_execution_time_ms``, ray/serve/batching.py), so no
(size, time) pair of one batch is ever exported. What a window of them gives is the number of batches,
the sum of their sizes and the sum of their times. For the simulator's linear model
``batch_ms = fixed_ms + size * per_item_ms`` the window's mean time is exactly
``fixed_ms + mean_size * per_item_ms`` plus the mean of the batches' noise, so a weighted least-squares
line through the windows' (mean size, mean time) recovers both terms, provided the windows' mean sizes
differ (a load that varies, so batches of several sizes form).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autotune.core import burst

# Below these a fit says more about the noise than about the pool.
MIN_BATCHES = 30
MIN_WINDOWS = 4
MIN_BATCH_SIZES = 2  # distinct batch-size buckets seen: one size cannot separate fixed from per-item time
MIN_SIZE_SPREAD = 0.2  # weighted std of the windows' mean batch sizes, requests
DAY_S = 86400.0


class ThinData(ValueError):
    """The samples cannot support a fit: ``field`` names the metric, ``problem`` says what is missing."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class BatchWindow:
    """What one replica's batch histograms say about one window."""

    batches: float  # batches executed (the execution-time histogram's count increment)
    items: float  # requests in batches formed (the batch-size histogram's sum increment)
    sized: float  # batches formed (the batch-size histogram's count increment)
    exec_ms: float  # summed execution time

    @property
    def mean_size(self) -> float:
        return self.items / self.sized

    @property
    def mean_ms(self) -> float:
        return self.exec_ms / self.batches


@dataclass(frozen=True)
class ServiceFit:
    fixed_ms: float
    per_item_ms: float
    noise_sigma: float  # per batch, log-normal: a batch's time spread relative to its mean
    fixed_se_ms: float  # standard errors from the least-squares covariance
    per_item_se_ms: float
    rms_ms: float  # batch-weighted RMS residual of the windows' mean time
    rel_rms: float  # rms_ms over the mean batch time
    windows: int
    batches: int
    sizes_seen: int

    def batch_ms(self, size: float) -> float:
        return self.fixed_ms + size * self.per_item_ms


def _finite(field: str, values: Sequence[float]) -> None:
    if not all(math.isfinite(v) for v in values):
        raise ThinData(field, "not a number in the samples")


def fit_service(windows: Sequence[BatchWindow], sizes_seen: int, field: str = "batches") -> ServiceFit:
    """Least squares of window mean time on window mean size, each window weighted by its batches.

    A window's mean has variance sigma^2 x mean^2 / batches for log-normal noise of sigma per batch, which
    gives the noise estimate; a fit that would make either term negative is refitted with that term at 0.
    """
    use = [w for w in windows if w.batches >= 1 and w.sized >= 1]
    _finite(field, [v for w in use for v in (w.batches, w.items, w.sized, w.exec_ms)])
    n_batches = int(round(sum(w.batches for w in use)))
    if n_batches < MIN_BATCHES:
        raise ThinData(field, f"{n_batches} batches recorded, at least {MIN_BATCHES} needed (send more load)")
    if len(use) < MIN_WINDOWS:
        raise ThinData(field, f"{len(use)} windows with batches, at least {MIN_WINDOWS} needed (a longer span)")
    if sizes_seen < MIN_BATCH_SIZES:
        raise ThinData(field, f"{sizes_seen} batch size seen, at least {MIN_BATCH_SIZES} needed to separate "
                              "fixed from per-item time (a load that varies, so batches of several sizes form)")
    x = np.array([w.mean_size for w in use])
    y = np.array([w.mean_ms for w in use])
    wt = np.array([w.batches for w in use])
    xm = float(np.average(x, weights=wt))
    spread = math.sqrt(float(np.average((x - xm) ** 2, weights=wt)))
    if spread < MIN_SIZE_SPREAD:
        raise ThinData(field, f"windows' mean batch sizes spread {spread:.2f} requests, at least "
                              f"{MIN_SIZE_SPREAD} needed (a load that varies, so batches of several sizes form)")
    a, b = _wls(x, y, wt)
    if a < 0:
        a, b = 0.0, float(np.sum(wt * x * y) / np.sum(wt * x * x))
    if b < 0:
        a, b = float(np.average(y, weights=wt)), 0.0
    pred = a + b * x
    r = y - pred
    dof = max(1, len(use) - 2)
    s2 = float(np.sum(wt * r**2)) / dof
    cov = s2 * np.linalg.pinv(np.array([[wt.sum(), (wt * x).sum()], [(wt * x).sum(), (wt * x * x).sum()]]))
    sigma = math.sqrt(float(np.sum(wt * r**2 / np.maximum(pred, 1e-9) ** 2)) / dof)
    rms = math.sqrt(float(np.average(r**2, weights=wt)))
    return ServiceFit(fixed_ms=a, per_item_ms=b, noise_sigma=min(1.0, sigma),
                      fixed_se_ms=math.sqrt(max(0.0, float(cov[0, 0]))),
                      per_item_se_ms=math.sqrt(max(0.0, float(cov[1, 1]))),
                      rms_ms=rms, rel_rms=rms / float(np.average(y, weights=wt)),
                      windows=len(use), batches=n_batches, sizes_seen=sizes_seen)


def _wls(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(np.column_stack([sw, sw * x]), sw * y, rcond=None)
    return float(coef[0]), float(coef[1])


def sizes_seen(bin_counts: Sequence[float]) -> int:
    """Batch-size buckets with a batch in them (non-cumulative counts per bucket)."""
    return sum(1 for c in bin_counts if c > 0.5)


@dataclass(frozen=True)
class StartupFit:
    load_s: float  # mean replica start-up (creation to ready)
    starts: int


def fit_startup(starts: float, total_ms: float, field: str = "replica starts") -> StartupFit | None:
    """Mean start-up from the start-up histogram's count and sum (None when no replica started)."""
    _finite(field, [starts, total_ms])
    if starts < 0.5:
        return None
    return StartupFit(load_s=total_ms / starts / 1e3, starts=int(round(starts)))


@dataclass(frozen=True)
class TrafficFit:
    mean_rate: float  # req/s over the span
    requests: int
    span_s: float
    dispersion: float  # index of dispersion of counts per slot (1: Poisson)
    slot_s: float
    daily_amplitude: float | None  # of a 24 h sinusoid around the mean, when the span covers a day
    daily_rms: float | None  # relative RMS residual of the hourly rates around that sinusoid


def fit_traffic(counts: Sequence[float], slot_s: float, field: str = "requests") -> TrafficFit:
    """Rate, burstiness (:mod:`autotune.core.burst`) and, from a day on, the daily rhythm of arrivals per slot."""
    c = np.asarray(counts, dtype=float)
    _finite(field, c.tolist())
    if c.size == 0 or c.sum() <= 0:
        raise ThinData(field, "no requests recorded in the span")
    span = c.size * slot_s
    rate = float(c.sum()) / span
    d = burst.index_of_dispersion(c)
    amp = rms = None
    if span >= DAY_S:
        amp, rms = _daily(c, slot_s)
    return TrafficFit(mean_rate=rate, requests=int(round(c.sum())), span_s=span,
                      dispersion=1.0 if d is None else d, slot_s=slot_s, daily_amplitude=amp, daily_rms=rms)


def _daily(counts: np.ndarray, slot_s: float) -> tuple[float, float]:
    """Least-squares ``m (1 + A sin(2 pi t / day + phi))`` through the hourly rates: (A, relative RMS residual)."""
    per_h = max(1, int(round(3600.0 / slot_s)))
    n = counts.size // per_h
    rates = counts[: n * per_h].reshape(n, per_h).sum(axis=1) / (per_h * slot_s)
    t = (np.arange(n) + 0.5) * 3600.0
    ph = 2 * np.pi * t / DAY_S
    coef, *_ = np.linalg.lstsq(np.column_stack([np.ones(n), np.sin(ph), np.cos(ph)]), rates, rcond=None)
    m = float(coef[0])
    pred = coef[0] + coef[1] * np.sin(ph) + coef[2] * np.cos(ph)
    amp = math.hypot(float(coef[1]), float(coef[2])) / m if m > 0 else 0.0
    rms = math.sqrt(float(np.mean((rates - pred) ** 2))) / m if m > 0 else math.nan
    return min(1.0, amp), rms
