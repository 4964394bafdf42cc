"""Index of dispersion below the control window: what the simulator and the live controller report."""

from __future__ import annotations

import numpy as np
import pytest

from autotune.core import burst


def _poisson(rate: float, span: float, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.random(rng.poisson(rate * span)) * span)


def test_poisson_arrivals_have_dispersion_near_one_in_every_slot() -> None:
    rng = np.random.default_rng(0)
    d = dict(burst.of_times(_poisson(300.0, 60.0, rng), 0.0, 60.0))
    assert set(d) == set(burst.SLOTS_S)
    assert all(0.7 < v < 1.3 for v in d.values())
    assert burst.shape(burst.of_times(_poisson(300.0, 60.0, rng), 0.0, 60.0), 300.0)[1] < 0.3


def test_clumps_give_the_same_dispersion_at_every_slot_and_it_is_their_size_moment() -> None:
    rng = np.random.default_rng(1)
    starts = _poisson(40.0, 300.0, rng)
    sizes = rng.geometric(1 / 8, starts.size)  # mean 8: E[S^2] / E[S] = 2 * 8 - 1 = 15
    t = np.repeat(starts, sizes)
    d = dict(burst.of_times(t, 0.0, 300.0))
    assert d[0.1] == pytest.approx(15.0, rel=0.2) and d[1.0] == pytest.approx(15.0, rel=0.3)
    clump, cv = burst.shape(tuple(d.items()), t.size / 300.0)
    assert clump == pytest.approx(15.0, rel=0.25) and cv < 0.3
    assert burst.bucket(clump) == 16.0


def test_a_per_second_swing_is_told_apart_from_clumps() -> None:
    rng = np.random.default_rng(2)
    level = rng.lognormal(-0.5 * 0.5**2, 0.5, 60)  # cv 0.53
    counts = rng.poisson(300.0 * level)
    t = np.sort(np.repeat(np.arange(60.0), counts) + rng.random(counts.sum()))
    d = burst.of_times(t, 0.0, 60.0)
    clump, cv = burst.shape(d, t.size / 60.0)
    assert clump < 2.0 and cv == pytest.approx(0.53, rel=0.35)
    assert burst.bucket_swing(cv) in (0.4, 0.8)


def test_buckets_and_too_few_slots() -> None:
    assert [burst.bucket(d) for d in (0.5, 1.4, 1.6, 3.0, 11.0, 500.0, float("nan"))] == [1, 1, 2, 4, 8, 64, 1]
    assert [burst.bucket_swing(c) for c in (0.1, 0.35, 0.6, 1.0, 5.0)] == [0, 0.4, 0.8, 0.8, 1.6]
    assert burst.of_times(np.array([0.1, 0.2]), 0.0, 0.3) == ()
    assert burst.of_counts([3, 4], 2.0) == () and burst.finest(()) == 1.0


def test_a_load_that_steps_up_within_the_window_is_not_burstiness() -> None:
    rng = np.random.default_rng(3)
    t = np.concatenate([_poisson(290.0, 4.0, rng), 4.0 + _poisson(870.0, 6.0, rng)])
    d = burst.of_times(np.sort(t), 0.0, 10.0)
    clump, cv = burst.shape(d, t.size / 10.0)
    assert clump < 1.5 and burst.bucket_swing(cv) == 0.0
