"""The traffic families' generators: seeded, at the mean rate asked for, with the statistics they claim."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from autotune.scenario import WorkloadSpec, load_scenario
from autotune.workload import clumps, crowds, spiky, worldcup
from autotune.workload.arrivals import Arrivals, build_arrivals
from autotune.workload.traces import RateTrace, read_trace

FAMILIES = [("crowds", {"compress": 4.0}), ("spiky", {}), ("llm-clumped", {"code": 0.0}),
            ("llm-clumped", {"code": 1.0}), ("worldcup", {"day": 53.65, "time_scale": 0.25}), ("worldcup", {})]


def arrivals(gen: str, params: dict[str, float], rate: float, seed: int, duration_s: float = 3600.0,
             **spec: float) -> Arrivals:
    sc = load_scenario("default")
    wl = WorkloadSpec(kind="synthetic", generator=gen, mean_rate=rate, duration_s=duration_s,  # type: ignore[arg-type]
                      params=params, **spec)
    return build_arrivals(sc.model_copy(update={"workload": wl}), seed)


def per_second(a: Arrivals) -> np.ndarray:
    return np.bincount(a.times.astype(np.int64), minlength=int(a.duration_s))


def excess_cv2(counts: np.ndarray) -> float:
    """(Var - mean) / mean^2 of counts per second: 0 for a Poisson stream (see autotune.workload.spiky)."""
    return float((counts.var() - counts.mean()) / counts.mean() ** 2)


@pytest.mark.parametrize("gen,params", FAMILIES)
def test_seeded_and_at_the_mean_rate(gen: str, params: dict[str, float]) -> None:
    a, b, c = arrivals(gen, params, 200.0, 3), arrivals(gen, params, 200.0, 3), arrivals(gen, params, 200.0, 4)
    assert np.array_equal(a.times, b.times) and np.array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.times[:1000], c.times[:1000])
    assert a.duration_s == 3600.0 and np.all(np.diff(a.times) >= 0) and 0 <= a.times[0] and a.times[-1] < 3600.0
    # The curves are scaled to the mean exactly; what is left is sampling noise (clumps: heavy-tailed sizes).
    assert a.mean_rate == pytest.approx(200.0, rel=0.03)
    assert a.tokens.size == a.times.size and a.tokens.min() >= 1


@pytest.mark.parametrize("gen,params", FAMILIES[:3])
def test_time_and_rate_scale_act_as_on_a_rate_curve(gen: str, params: dict[str, float]) -> None:
    """time_scale 0.5 squeezes twice the generated span into the duration: twice the rate, as for rate curves."""
    a = arrivals(gen, params, 50.0, 1, 1800.0, time_scale=0.5, rate_scale=2.0)
    assert a.mean_rate == pytest.approx(200.0, rel=0.05) and a.times.max() < 1800.0


def test_spiky_dispersion_per_second_and_clumps_within_seconds() -> None:
    cv2 = [excess_cv2(per_second(arrivals("spiky", {}, 100.0, s))) for s in range(6)]
    # The target: cv2 about 0.25, between the Azure traces' per-second 0.07 (conversation) and 4.7 (code).
    assert 0.12 < float(np.median(cv2)) < 0.45 and min(cv2) > 0.05
    for rate, lo in ((30.0, 3.0), (300.0, 20.0)):  # D = 1 + cv2 x rate: in the tens at 300 req/s
        counts = per_second(arrivals("spiky", {}, rate, 0))
        assert counts.var() / counts.mean() > lo
    # Below a second: 100 ms slots far from uniform within their second (a chi-square per degree of freedom
    # near 1 for Poisson arrivals spread uniformly; Dirichlet(0.5) slot weights make it several times that).
    a = arrivals("spiky", {}, 100.0, 2)
    slots = np.bincount((a.times * 10).astype(np.int64), minlength=36000).reshape(-1, 10)
    n = slots.sum(axis=1, keepdims=True)
    busy = n[:, 0] > 0
    chi = ((slots[busy] - n[busy] / 10) ** 2 / (n[busy] / 10)).sum() / (9 * busy.sum())
    assert chi > 5
    # A Poisson stream at the same rate for contrast: no excess dispersion.
    flat = arrivals("poisson", {}, 100.0, 2)
    assert abs(excess_cv2(per_second(flat))) < 0.01


def test_spiky_rates_have_bursts_of_1_to_10_seconds() -> None:
    lam = spiky.rates(100.0, 3600.0, {"jitter_sigma": 0.0}, np.random.default_rng(0))
    high = lam > 1.05 * np.median(lam)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], high.astype(np.int8), [0]])))
    lengths = edges[1::2] - edges[::2]
    assert lengths.size > 60 and lengths.min() >= 1 and np.median(lengths) <= 10


@pytest.mark.parametrize("code", [0.0, 1.0])
def test_llm_clumps_share_timestamps_and_keep_the_trace_tokens(code: float) -> None:
    a = arrivals("llm-clumped", {"code": code}, 300.0, 5)
    _, first, size = np.unique(a.times, return_index=True, return_counts=True)
    shared = 1.0 - float(np.sum(size == 1)) / a.times.size
    assert clumps.shared_fraction() == pytest.approx(0.90, abs=0.005)
    assert shared == pytest.approx(0.90, abs=0.02)  # as observed: 90% of requests share their timestamp
    assert size.mean() == pytest.approx(4.85, rel=0.08) and size.max() > 30  # Zipf(1.65) on 1..64
    trace_tokens = clumps._trace(int(code)).tokens
    assert np.isin(a.tokens, trace_tokens).all()
    assert np.median(a.tokens) == pytest.approx(np.median(trace_tokens), rel=0.1)
    # The clump epochs keep the trace's shape: the code trace is far burstier per second than conversation.
    cv2 = excess_cv2(per_second(a))
    assert (cv2 > 1.0) if code else (0.05 < cv2 < 1.0)


def test_crowd_law_is_what_the_worldcup_trace_gives() -> None:
    law = crowds.fit_worldcup()
    for name, value in vars(crowds.FIT).items():
        assert getattr(law, name) == pytest.approx(value, abs=1e-3), name
    found = crowds.detect_crowds(read_trace(crowds.WORLDCUP))  # type: ignore[arg-type]
    match_days = {int(c.start_s // crowds.DAY_S) for c in found if c.size >= 4}
    assert {40, 41, 42, 45, 53, 54, 55} <= match_days


def test_synthetic_crowd_sizes_follow_the_fitted_law() -> None:
    """One crowd on a flat base, a day long so every crowd peaks: log(peak / base) ~ N(size_mu, size_sigma)."""
    logs = []
    for seed in range(150):
        curve = crowds.crowds(10.0, 86400.0, {"per_hour": 0.0, "compress": 8.0}, np.random.default_rng(seed))
        logs.append(np.log(curve.max() / curve.min()))
    assert np.mean(logs) == pytest.approx(crowds.FIT.size_mu, abs=0.1)
    assert np.std(logs) == pytest.approx(crowds.FIT.size_sigma, abs=0.1)
    # Against the detected crowds themselves: the medians agree within the law's spread.
    found = crowds.detect_crowds(read_trace(crowds.WORLDCUP))  # type: ignore[arg-type]
    assert abs(np.median(logs) - np.log(np.median([c.size for c in found]))) < crowds.FIT.size_sigma
    # In arrivals: a crowd stands out of the calm minutes.
    a = arrivals("crowds", {"compress": 4.0}, 100.0, 0)
    per_min = np.bincount((a.times // 60).astype(np.int64))
    assert per_min.max() > 2 * np.median(per_min)


def test_worldcup_loads_and_its_held_out_windows_hold_crowds() -> None:
    tr = read_trace("traces/worldcup98_per_minute_to_0625.csv")
    assert isinstance(tr, RateTrace) and tr.counts.size == 80_780 and tr.start_s[-1] / 86400 > 56
    for day in worldcup.CROWD_WINDOWS.values():
        assert worldcup.held_out(day, 4 / 24)
        t = worldcup.rate_slice(worldcup.trace(), day, 100.0, 3600.0, worldcup.CROWD_SCALE,
                                np.random.default_rng(0))
        per_min = np.bincount((t // 60).astype(np.int64))
        assert per_min.max() > 4 * per_min[:10].mean()  # the crowd over the window's first ten minutes
    assert not worldcup.held_out(2.0, 1.0) and worldcup.held_out(52.9, 0.2) and worldcup.held_out(1.5, 0.1)


def test_generators_are_named_in_the_workload_spec() -> None:
    for name in ("crowds", "spiky", "llm-clumped", "worldcup"):
        WorkloadSpec(kind="synthetic", generator=name, mean_rate=1.0, duration_s=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        WorkloadSpec(kind="synthetic", generator="nope", mean_rate=1.0, duration_s=1.0)  # type: ignore[arg-type]
