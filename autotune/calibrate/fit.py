"""Pure fits of a pool's service time, replica start-up and traffic from windowed Serve metrics.

Ray Serve records a batch's size and its execution time in two separate histograms
(``serve_actual_batch_size`` and ``serve_batch_execution_time_ms``, ray/serve/batching.py), so no
(size, time) pair of one batch is ever exported; and Ray's metrics pipeline records every observation
at its bucket's midpoint (ray/_private/telemetry/open_telemetry_metric_recorder.py: "the histogram sum
value will be an approximation"), so a histogram's ``_sum`` says nothing finer than its buckets. What
is exact is the bucket counts. A window of them gives how many batches of each size ran (from the size
and utilization histograms, :mod:`autotune.calibrate.measure`) and how many batch times fell in each
time bucket; the fit is the (fixed_ms, per_item_ms, noise_sigma) of the simulator's model
``batch_ms = (fixed_ms + size * per_item_ms) x LogNormal(mean 1, sigma)`` under which those time
buckets are most likely (multinomial likelihood, every window's own mix of sizes). Windows whose mixes
differ, and batch times that cross bucket bounds, are what separate the terms; the standard errors
(from the likelihood's curvature) say when they do not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from autotune.core import burst
from autotune.live import promtext as pt

# Below these a fit says more about the noise than about the pool.
MIN_BATCHES = 30
MIN_BATCH_SIZES = 2  # distinct batch sizes seen: one size cannot separate fixed from per-item time
MIN_BUCKET_SHARE = 0.05  # a time bucket holding fewer of the batches than this does not locate them
MAX_REL_SE = 0.25  # a term whose standard error is above this fraction of the batch time is not identified
MAX_REL_SE_SIGMA = 0.5  # noise resolved this well is fitted, else held at the starting scenario's
SIGMA_MIN = 0.01  # below this a batch-time noise is not told from none by any bucket layout in use
DAY_S = 86400.0


class ThinData(ValueError):
    """The samples cannot support a fit: ``field`` names the metric, ``problem`` says what is missing."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class BatchWindow:
    """One replica's batches in one window: how many of each size, and how many times fell in each bucket."""

    sizes: tuple[float, ...]  # batches of size 1, 2, ...
    exec_bins: tuple[tuple[float, float], ...]  # (bucket upper bound ms, batches in the bucket), ascending

    @property
    def batches(self) -> float:
        return sum(c for _, c in self.exec_bins)


@dataclass(frozen=True)
class ServiceFit:
    fixed_ms: float
    per_item_ms: float
    noise_sigma: float  # log-normal sigma of one batch's time
    noise_held: bool  # the buckets did not resolve it: held at the starting value
    fixed_se_ms: float  # standard errors from the likelihood's curvature
    per_item_se_ms: float
    bucket_rms: float  # RMS of observed minus predicted fraction of batches per time bucket, all windows pooled
    bucket_worst: float  # the largest such difference
    windows: int
    batches: int
    sizes_seen: int

    def batch_ms(self, size: float) -> float:
        return self.fixed_ms + size * self.per_item_ms


def _finite(field: str, values: Sequence[float]) -> None:
    if not all(math.isfinite(v) for v in values):
        raise ThinData(field, "not a number in the samples")


_erf = np.vectorize(math.erf, otypes=[float])


def _bucket_probs(theta: np.ndarray, n_sizes: int, bounds: np.ndarray) -> np.ndarray:
    """P(batch time in bucket k | size s) for sizes 1..n_sizes: a (sizes, buckets) matrix."""
    a, b, sigma = theta
    mean = a + b * np.arange(1, n_sizes + 1)
    mu = np.log(np.maximum(mean, 1e-6)) - sigma**2 / 2
    with np.errstate(divide="ignore"):
        z = (np.log(bounds)[None, :] - mu[:, None]) / sigma
    cdf = 0.5 * (1 + _erf(z / math.sqrt(2)))
    cdf[:, -1] = 1.0  # the +Inf bucket
    return np.diff(np.concatenate([np.zeros((n_sizes, 1)), cdf], axis=1), axis=1)


def _nll(theta: np.ndarray, pi: np.ndarray, counts: np.ndarray, bounds: np.ndarray) -> float:
    if theta[0] < 0 or theta[1] < 0 or not SIGMA_MIN <= theta[2] <= 1.0:
        return math.inf
    pred = pi @ _bucket_probs(theta, pi.shape[1], bounds)
    return -float(np.sum(counts * np.log(np.maximum(pred, 1e-12))))


def _nelder_mead(f: Callable[[np.ndarray], float], x0: np.ndarray, step: np.ndarray, iters: int = 600,
                 tol: float = 1e-7) -> np.ndarray:
    """Minimize ``f`` from ``x0`` (the textbook simplex: reflect, expand, contract, shrink)."""
    pts = [x0] + [x0 + np.eye(len(x0))[i] * step[i] for i in range(len(x0))]
    vals = [f(p) for p in pts]
    for _ in range(iters):
        order = np.argsort(vals)
        pts, vals = [pts[i] for i in order], [vals[i] for i in order]
        if abs(vals[-1] - vals[0]) <= tol * (abs(vals[0]) + tol):
            break
        centre = np.mean(pts[:-1], axis=0)
        refl = centre + (centre - pts[-1])
        fr = f(refl)
        if fr < vals[0]:
            exp = centre + 2 * (centre - pts[-1])
            fe = f(exp)
            pts[-1], vals[-1] = (exp, fe) if fe < fr else (refl, fr)
        elif fr < vals[-2]:
            pts[-1], vals[-1] = refl, fr
        else:
            con = centre + 0.5 * (pts[-1] - centre)
            fc = f(con)
            if fc < vals[-1]:
                pts[-1], vals[-1] = con, fc
            else:
                pts = [pts[0] + 0.5 * (p - pts[0]) for p in pts]
                vals = [f(p) for p in pts]
    return pts[int(np.argmin(vals))]


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = len(x)
    out = np.zeros((n, n))
    e = np.eye(n) * h
    for i in range(n):
        for j in range(n):
            out[i, j] = (f(x + e[i] + e[j]) - f(x + e[i] - e[j]) - f(x - e[i] + e[j]) + f(x - e[i] - e[j])) / (
                4 * h[i] * h[j])
    return out


def _fit(f: Callable[[np.ndarray], float], x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The minimum of ``f`` from a few starts (the bucketed likelihood has flat stretches) and its standard
    errors from the curvature there (inf where it is flat)."""
    best = None
    for scale in (1.0, 0.5, 2.0):
        x = x0.copy()
        x[:2] *= scale
        x = _nelder_mead(f, x, x0 * 0.3)
        x = _nelder_mead(f, x, np.maximum(x * 0.05, 1e-3))
        if best is None or f(x) < f(best):
            best = x
    assert best is not None
    try:
        cov = np.linalg.inv(_hessian(f, best, np.maximum(np.abs(best) * 1e-3, 1e-4)))
        diag = np.diag(cov)
        se = np.sqrt(diag) if np.all(diag > 0) else np.full(len(best), math.inf)
    except np.linalg.LinAlgError:
        se = np.full(len(best), math.inf)
    return best, se


def fit_service(windows: Sequence[BatchWindow], start: tuple[float, float, float],
                field: str = "batches") -> ServiceFit:
    """The most likely (fixed_ms, per_item_ms, noise_sigma) given each window's sizes and time buckets.

    ``start`` is where the search begins (the starting scenario's values); every window must share the
    time buckets (one histogram's bounds).
    """
    _finite(field, [v for w in windows for v in (*w.sizes, *(c for _, c in w.exec_bins))])
    use = [w for w in windows if w.batches >= 1 and sum(w.sizes) >= 1]
    n_batches = int(round(sum(w.batches for w in use)))
    if n_batches < MIN_BATCHES:
        raise ThinData(field, f"{n_batches} batches recorded, at least {MIN_BATCHES} needed (send more load)")
    n_sizes = max(len(w.sizes) for w in use)
    pi = np.array([list(w.sizes) + [0.0] * (n_sizes - len(w.sizes)) for w in use])
    seen = int(np.sum(pi.sum(axis=0) > 0.5))
    if seen < MIN_BATCH_SIZES:
        raise ThinData(field, f"{seen} batch size seen, at least {MIN_BATCH_SIZES} needed to separate fixed "
                              "from per-item time (a load that varies, so batches of several sizes form)")
    pi = pi / pi.sum(axis=1, keepdims=True)
    bounds = np.array([le for le, _ in use[0].exec_bins])
    counts = np.array([[c for _, c in w.exec_bins] for w in use])
    unclear = ("batch times fall in too few histogram buckets to separate fixed from per-item time"
               "{}; finer buckets: RAY_SERVE_REQUEST_LATENCY_BUCKETS_MS on the replicas")
    shares = counts.sum(axis=0) / counts.sum()
    if np.sum(shares >= MIN_BUCKET_SHARE) < 2:  # one bucket holds them all: any line through it fits
        raise ThinData(field, unclear.format(f" ({np.max(shares):.0%} in one)"))
    f = lambda th: _nll(th, pi, counts, bounds)  # noqa: E731 - the objective, closed over the data
    a0, b0, s0 = start
    x0 = np.array([max(a0, 1.0), max(b0, 1.0), min(max(s0, 0.02), 0.5)])
    best, se = _fit(f, x0)
    held = bool(not se[2] <= MAX_REL_SE_SIGMA * best[2] or best[2] < 2 * SIGMA_MIN)
    if held:
        # Buckets wide against the noise leave sigma trading off against the terms (or running to its bound,
        # where every size's times fall in one bucket and the curvature means nothing): hold the start's.
        sigma = x0[2]
        f2 = lambda th: _nll(np.array([th[0], th[1], sigma]), pi, counts, bounds)  # noqa: E731
        ab, se2 = _fit(f2, x0[:2])
        best, se = np.array([ab[0], ab[1], sigma]), np.array([se2[0], se2[1], math.nan])
    mean_size = float(np.sum(pi * counts.sum(axis=1, keepdims=True) * np.arange(1, n_sizes + 1)) / counts.sum())
    typical = best[0] + best[1] * mean_size
    if not (se[0] <= MAX_REL_SE * typical and se[1] * mean_size <= MAX_REL_SE * typical):
        raise ThinData(field, unclear.format(f" (standard errors {se[0]:.3g} and {se[1]:.3g} ms)"))
    pooled_obs = counts.sum(axis=0) / counts.sum()
    pooled_pred = (counts.sum(axis=1, keepdims=True) * pi @ _bucket_probs(best, n_sizes, bounds)).sum(axis=0)
    diff = pooled_obs - pooled_pred / counts.sum()
    return ServiceFit(fixed_ms=float(best[0]), per_item_ms=float(best[1]), noise_sigma=float(best[2]),
                      noise_held=held,
                      fixed_se_ms=float(se[0]), per_item_se_ms=float(se[1]),
                      bucket_rms=float(np.sqrt(np.mean(diff[counts.sum(axis=0) + pooled_pred > 0] ** 2))),
                      bucket_worst=float(np.max(np.abs(diff))), windows=len(use), batches=n_batches,
                      sizes_seen=seen)


@dataclass(frozen=True)
class StartupFit:
    load_s: float  # median replica start-up (creation to ready), interpolated within its bucket
    low_s: float  # the bucket that holds the median: the start-up is known no finer than this
    high_s: float
    starts: int


def fit_startup(buckets: Sequence[tuple[float, float]], field: str = "replica starts") -> StartupFit | None:
    """The start-up histogram's median (its ``_sum`` is bucket midpoints, like every Ray histogram's); None
    when no replica started. ``buckets``: cumulative (upper bound ms, count), ascending."""
    _finite(field, [c for _, c in buckets])
    h = pt.Histogram(tuple(buckets), buckets[-1][1] if buckets else 0.0, 0.0)
    if h.count < 0.5:
        return None
    med = pt.quantile(h, 0.5)
    low = max((le for le, c in buckets if c < h.count / 2), default=0.0)
    high = min(le for le, c in buckets if c >= h.count / 2)
    return StartupFit(load_s=med / 1e3, low_s=low / 1e3, high_s=high / 1e3, starts=int(round(h.count)))


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
