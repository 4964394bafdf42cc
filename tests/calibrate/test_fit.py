"""The fits recover known parameters from synthetic samples, and refuse data that cannot support them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autotune.calibrate import fit
from autotune.calibrate.fit import BatchWindow, ThinData
from tests.calibrate.synthetic import TIME_BOUNDS


def windows(fixed: float, per_item: float, sigma: float, n_windows: int = 40, seed: int = 0,
            max_batch: int = 8, bounds: tuple[float, ...] = TIME_BOUNDS) -> list[BatchWindow]:
    """Windows of batches as Serve's histograms record them: sizes varying with load, log-normal time noise,
    each batch's time counted in its bucket."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_windows):
        n = int(rng.integers(5, 40))
        # Load varies from window to window: each window's batches centre on a different size.
        s = np.clip(rng.poisson(0.5 + k % max_batch, n), 1, max_batch)
        ms = (fixed + s * per_item) * np.exp(rng.normal(-sigma**2 / 2, sigma, n))
        sizes = tuple(float(np.sum(s == i)) for i in range(1, max_batch + 1))
        edges = [0.0, *bounds, math.inf]
        out.append(BatchWindow(sizes, tuple((hi, float(np.sum((ms > lo) & (ms <= hi))))
                                            for lo, hi in zip(edges, edges[1:]))))
    return out


@pytest.mark.parametrize(("fixed", "per_item", "sigma"), [(120.0, 80.0, 0.05), (5.0, 2.0, 0.05), (180.0, 104.7, 0.1)])
def test_service_fit_recovers_fixed_and_per_item_time(fixed: float, per_item: float, sigma: float) -> None:
    ws = windows(fixed, per_item, sigma)
    f = fit.fit_service(ws, (fixed * 0.7, per_item * 1.4, 0.05))  # the search starts from wrong values
    # Within three standard errors, and the standard errors small against the values.
    assert abs(f.fixed_ms - fixed) <= 3 * f.fixed_se_ms and abs(f.per_item_ms - per_item) <= 3 * f.per_item_se_ms
    assert f.fixed_se_ms <= 0.1 * fixed and f.per_item_se_ms <= 0.05 * per_item
    assert f.noise_sigma == pytest.approx(sigma, rel=0.3)
    assert f.windows == 40 and f.batches == sum(w.batches for w in ws) and f.sizes_seen == 8
    assert f.bucket_worst < 0.03


def test_service_fit_from_coarse_buckets_with_few_sizes() -> None:
    """Serve's default buckets are 100 ms wide from 100 to 500 ms and 500 ms wide above: batches of 1 to 4 at
    180 + 107 ms/item cross 300, 400 and 500 ms, and their split between buckets locates the terms."""
    f = fit.fit_service(windows(180.0, 107.2, 0.05, max_batch=4), (120.0, 82.5, 0.05))
    assert f.fixed_ms == pytest.approx(180.0, rel=0.05) and f.per_item_ms == pytest.approx(107.2, rel=0.05)


def test_thin_data_raises_naming_what_is_missing() -> None:
    ws = windows(100.0, 50.0, 0.05)
    start = (100.0, 50.0, 0.05)
    with pytest.raises(ThinData, match="batches recorded, at least 30"):
        fit.fit_service([BatchWindow((3.0, 2.0), ((300.0, 3.0), (400.0, 2.0), (math.inf, 0.0)))] * 5, start)
    with pytest.raises(ThinData, match="1 batch size seen"):
        one = [BatchWindow((w.batches,), w.exec_bins) for w in ws]
        fit.fit_service(one, start)
    with pytest.raises(ThinData, match="too few histogram buckets"):  # every batch in (500, 1000] ms
        fit.fit_service(windows(600.0, 20.0, 0.02, max_batch=4), (600.0, 20.0, 0.05))
    with pytest.raises(ThinData, match="not a number"):
        fit.fit_service([*ws, BatchWindow((math.nan,), ws[0].exec_bins)], start)
    with pytest.raises(ThinData) as e:
        fit.fit_service([], start, field='batches{deployment="l4"}')
    assert e.value.field == 'batches{deployment="l4"}'


def test_startup_is_the_histogram_median_within_its_bucket() -> None:
    # Four starts between 2 and 5 s (Serve's start-up buckets), none faster.
    up = fit.fit_startup([(1000.0, 0.0), (2000.0, 0.0), (5000.0, 4.0), (math.inf, 4.0)])
    assert up is not None and up.load_s == pytest.approx(3.5) and (up.low_s, up.high_s) == (2.0, 5.0)
    assert up.starts == 4
    assert fit.fit_startup([(1000.0, 0.0), (math.inf, 0.0)]) is None and fit.fit_startup([]) is None


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
