"""Synthetic arrival generators: Poisson with a rate curve, sampled per 1 s bin.

Each generator returns the rate curve (req/s per bin); :func:`sample_poisson`
turns any curve into arrival times with the caller's RNG, so every generator
is a seeded non-homogeneous Poisson process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

BIN_S = 1.0


def _bins(duration_s: float) -> np.ndarray:
    return np.arange(0.0, duration_s, BIN_S)


def daily(mean: float, duration_s: float, p: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """Sinusoidal day: amplitude (0..1) around the mean, one cycle per period_s."""
    amp = p.get("amplitude", 0.6)
    period = p.get("period_s", 86400.0)
    phase = p.get("phase", -np.pi / 2)  # start at the trough, like a night
    t = _bins(duration_s)
    return mean * (1.0 + amp * np.sin(2 * np.pi * t / period + phase))


def poisson(mean: float, duration_s: float, p: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    return np.full(_bins(duration_s).size, mean)


def mmpp(mean: float, duration_s: float, p: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """Two-state Markov-modulated Poisson: calm and burst periods, long-run mean kept."""
    burst = p.get("burst_factor", 4.0)
    burst_s = p.get("mean_burst_s", 30.0)
    calm_s = p.get("mean_calm_s", 120.0)
    frac_burst = burst_s / (burst_s + calm_s)
    calm_rate = mean / (1 - frac_burst + burst * frac_burst)
    n = _bins(duration_s).size
    out = np.empty(n)
    i, bursting = 0, False
    while i < n:
        stay = max(1, int(round(rng.exponential(burst_s if bursting else calm_s))))
        out[i : i + stay] = calm_rate * (burst if bursting else 1.0)
        i += stay
        bursting = not bursting
    return out


def flash(mean: float, duration_s: float, p: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """Flash crowd: base load, then a spike_factor x spike with a short ramp, then back."""
    factor = p.get("spike_factor", 6.0)
    start = p.get("spike_start_frac", 0.5) * duration_s
    length = p.get("spike_duration_s", 180.0)
    ramp = max(p.get("ramp_s", 10.0), BIN_S)
    t = _bins(duration_s)
    up = np.clip((t - start) / ramp, 0, 1)
    down = np.clip((start + length - t) / ramp, 0, 1)
    return mean * (1.0 + (factor - 1.0) * np.minimum(up, down))


def ramp(mean: float, duration_s: float, p: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """Linear ramp from mean*(1-spread) to mean*(1+spread)."""
    spread = p.get("spread", 0.8)
    t = _bins(duration_s)
    return mean * (1.0 - spread + 2 * spread * t / max(duration_s, BIN_S))


GENERATORS: dict[str, Callable[[float, float, Mapping[str, float], np.random.Generator], np.ndarray]] = {
    "poisson": poisson,
    "daily": daily,
    "mmpp": mmpp,
    "flash": flash,
    "ramp": ramp,
}


def sample_poisson(rates: np.ndarray, width_s: np.ndarray | float, start_s: np.ndarray | None,
                   rng: np.random.Generator) -> np.ndarray:
    """Arrival times of a Poisson process with piecewise-constant rate."""
    width = np.broadcast_to(np.asarray(width_s, dtype=np.float64), rates.shape)
    start = np.concatenate([[0.0], np.cumsum(width)[:-1]]) if start_s is None else start_s
    counts = rng.poisson(np.maximum(rates, 0.0) * width)
    return spread_counts(counts, start, width, rng)


def spread_counts(counts: np.ndarray, start: np.ndarray, width: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Given counts per bin, place arrivals uniformly inside each bin (conditional Poisson)."""
    bin_of = np.repeat(np.arange(counts.size), counts)
    t = start[bin_of] + rng.random(bin_of.size) * np.asarray(width)[bin_of]
    t.sort()
    return t


def scale_requests(t: np.ndarray, tok: np.ndarray, factor: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Thin (factor < 1) or multiply (factor > 1) a request trace, keeping its shape.

    Each request is kept floor(f) or ceil(f) times (so the expected count is f);
    extra copies land uniformly between it and the next request, so bursts stay
    bursts instead of becoming exact duplicates.
    """
    base = np.floor(factor)
    k = (base + (rng.random(t.size) < factor - base)).astype(np.int64)
    idx = np.repeat(np.arange(t.size), k)
    first = np.ones(idx.size, dtype=bool)
    first[1:] = idx[1:] != idx[:-1]
    mean_gap = (t[-1] - t[0]) / (t.size - 1) if t.size > 1 else 1.0
    gap = np.diff(t, append=t[-1] + mean_gap) if t.size else t
    out = t[idx] + np.where(first, 0.0, rng.random(idx.size) * gap[idx])
    order = np.argsort(out, kind="stable")
    return out[order], tok[idx][order]


def synthetic_tokens(n: int, p: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    median = p.get("tokens_median", 256.0)
    sigma = p.get("tokens_sigma", 0.8)
    return np.maximum(1.0, rng.lognormal(np.log(median), sigma, n)).astype(np.float32)
