"""The fits recover known parameters from synthetic samples, and refuse data that cannot support them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autotune.calibrate import fit
from autotune.calibrate.fit import BatchWindow, ThinData


def windows(fixed: float, per_item: float, sigma: float, n_windows: int = 40, seed: int = 0,
            sizes: tuple[int, ...] = (1, 2, 3, 4, 6, 8)) -> list[BatchWindow]:
    """Windows of batches drawn as Serve forms them: sizes varying with load, log-normal time noise."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_windows):
        n = int(rng.integers(5, 40))
        # Load varies from window to window: each window's batches centre on a different size.
        centre = sizes[k % len(sizes)]
        s = np.clip(rng.poisson(centre, n), 1, max(sizes))
        ms = (fixed + s * per_item) * np.exp(rng.normal(-sigma**2 / 2, sigma, n))
        out.append(BatchWindow(batches=n, items=float(s.sum()), sized=n, exec_ms=float(ms.sum())))
    return out


@pytest.mark.parametrize(("fixed", "per_item", "sigma"), [(120.0, 80.0, 0.0), (5.0, 2.0, 0.05), (180.0, 104.7, 0.1)])
def test_service_fit_recovers_fixed_and_per_item_time(fixed: float, per_item: float, sigma: float) -> None:
    f = fit.fit_service(windows(fixed, per_item, sigma), sizes_seen=6)
    # Within three standard errors, and the standard errors are small against the values.
    assert abs(f.fixed_ms - fixed) <= 3 * f.fixed_se_ms + 1e-6
    assert abs(f.per_item_ms - per_item) <= 3 * f.per_item_se_ms + 1e-6
    assert f.fixed_se_ms <= 0.05 * fixed + 1e-6 and f.per_item_se_ms <= 0.03 * per_item + 1e-6
    # The noise is rougher: windows' means hide it, and batch sizes varying within a window add to it.
    assert f.noise_sigma == pytest.approx(sigma, rel=0.35, abs=0.01)
    assert f.windows == 40 and f.batches == sum(w.batches for w in windows(fixed, per_item, sigma))


def test_service_fit_never_gives_a_negative_term() -> None:
    # Time proportional to size (no fixed part) with noise: an unconstrained line may cross below zero.
    f = fit.fit_service(windows(0.0, 10.0, 0.1, seed=3), sizes_seen=6)
    assert f.fixed_ms >= 0 and f.per_item_ms == pytest.approx(10.0, rel=0.05)


def test_thin_data_raises_naming_what_is_missing() -> None:
    ws = windows(100.0, 50.0, 0.05)
    with pytest.raises(ThinData, match="batches recorded, at least 30"):
        fit.fit_service([BatchWindow(2, 4, 2, 300.0)] * 5, sizes_seen=3)
    with pytest.raises(ThinData, match="windows with batches, at least 4"):
        fit.fit_service([BatchWindow(20, 40, 20, 3000.0)] * 3, sizes_seen=3)
    with pytest.raises(ThinData, match="1 batch size seen"):
        fit.fit_service(ws, sizes_seen=1)
    with pytest.raises(ThinData, match="mean batch sizes spread"):  # several sizes, but the same mix everywhere
        fit.fit_service([BatchWindow(20, 50, 20, 3000.0)] * 10, sizes_seen=3)
    with pytest.raises(ThinData, match="not a number"):
        fit.fit_service([*ws, BatchWindow(3, 6, 3, math.nan)], sizes_seen=6)
    with pytest.raises(ThinData) as e:
        fit.fit_service([], sizes_seen=0, field='batches{deployment="l4"}')
    assert e.value.field == 'batches{deployment="l4"}'


def test_sizes_seen_counts_the_buckets_with_batches() -> None:
    assert fit.sizes_seen([10, 0, 3, 0.0]) == 2 and fit.sizes_seen([]) == 0


def test_startup_is_the_histogram_mean() -> None:
    up = fit.fit_startup(4, 4 * 3500.0)
    assert up is not None and up.load_s == pytest.approx(3.5) and up.starts == 4
    assert fit.fit_startup(0, 0) is None


def test_traffic_rate_and_burstiness() -> None:
    rng = np.random.default_rng(1)
    calm = fit.fit_traffic(rng.poisson(20.0, 600).tolist(), 1.0)
    assert calm.mean_rate == pytest.approx(20.0, rel=0.02) and calm.dispersion == pytest.approx(1.0, abs=0.2)
    assert calm.daily_amplitude is None and calm.span_s == 600
    # Clumps of 4 at a quarter the rate: same mean, dispersion about E[S^2]/E[S] = 4.
    clumped = fit.fit_traffic((4 * rng.poisson(5.0, 600)).tolist(), 1.0)
    assert clumped.mean_rate == pytest.approx(20.0, rel=0.05) and clumped.dispersion == pytest.approx(4.0, rel=0.2)
    with pytest.raises(ThinData, match="no requests"):
        fit.fit_traffic([0, 0, 0], 1.0)


def test_daily_rhythm_from_two_days_of_counts() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(0, 2 * 86400, 60.0)
    rate = 10.0 * (1 + 0.6 * np.sin(2 * np.pi * t / 86400 + 1.0))
    f = fit.fit_traffic(rng.poisson(rate * 60.0).tolist(), 60.0)
    assert f.daily_amplitude == pytest.approx(0.6, abs=0.02) and f.mean_rate == pytest.approx(10.0, rel=0.02)
    assert f.daily_rms is not None and f.daily_rms < 0.05
