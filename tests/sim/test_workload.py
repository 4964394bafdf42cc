"""Traces and generators: formats, rescaling options, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from autotune.scenario import load_scenario
from autotune.workload.arrivals import TraceOptions, build_arrivals
from autotune.workload.traces import RateTrace, RequestTrace, read_trace

AZURE = "traces/azure_llm_conv_2023.csv"
NASA = "traces/nasa_http_1995_per_minute.csv"


def test_azure_request_trace_reads_timestamps_and_tokens():
    tr = read_trace(AZURE)
    assert isinstance(tr, RequestTrace)
    assert tr.arrival_s.size == 19_366 and tr.arrival_s[0] == 0.0
    assert np.all(np.diff(tr.arrival_s) >= 0)
    assert 0.9 * 3600 < tr.arrival_s[-1] < 3600
    assert tr.tokens[0] == 374  # first row's ContextTokens


def test_nasa_rate_trace_keeps_every_count_at_scale_one():
    tr = read_trace(NASA)
    assert isinstance(tr, RateTrace) and tr.counts.size == 84_332
    sc = load_scenario("nasa")
    arr = build_arrivals(sc, 0, TraceOptions(time_scale=1.0, mean_rate=None, duration_s=6 * 3600.0))
    sc_raw = sc.model_copy(update={"workload": sc.workload.model_copy(update={"mean_rate": None})})
    arr = build_arrivals(sc_raw, 0, TraceOptions(time_scale=1.0, duration_s=6 * 3600.0))
    assert len(arr) == int(tr.counts[:360].sum())
    assert np.all(np.diff(arr.times) >= 0) and arr.times[-1] < 6 * 3600


@pytest.mark.parametrize("rate", [10.0, 250.0, 1000.0])
def test_mean_rate_rescales_request_and_rate_traces(rate):
    for name in ("azure-conv", "nasa"):
        sc = load_scenario(name)
        arr = build_arrivals(sc, 1, TraceOptions(mean_rate=rate, duration_s=1800.0))
        assert arr.duration_s == 1800.0
        assert arr.mean_rate == pytest.approx(rate, rel=0.03), name


def test_time_scale_compresses_and_duration_cuts():
    sc = load_scenario("azure-code")
    full = build_arrivals(sc, 0, TraceOptions(rate_scale=1.0, mean_rate=None))
    raw = read_trace("traces/azure_llm_code_2023.csv")
    sc_raw = sc.model_copy(update={"workload": sc.workload.model_copy(update={"mean_rate": None})})
    half = build_arrivals(sc_raw, 0, TraceOptions(time_scale=0.5))
    assert len(half) == raw.arrival_s.size  # every request, the last one included
    mean_gap = raw.arrival_s[-1] / (raw.arrival_s.size - 1)
    assert half.duration_s == pytest.approx((raw.arrival_s[-1] + mean_gap) * 0.5)
    cut = build_arrivals(sc_raw, 0, TraceOptions(duration_s=600.0))
    assert cut.times.max() < 600.0 and len(cut) == int(np.sum(raw.arrival_s < 600.0))
    assert len(full) > 0


def test_rate_scale_multiplies_bursts_instead_of_duplicating():
    sc = load_scenario("azure-conv")
    sc_raw = sc.model_copy(update={"workload": sc.workload.model_copy(update={"mean_rate": None})})
    base = build_arrivals(sc_raw, 0, TraceOptions(duration_s=900.0))
    x3 = build_arrivals(sc_raw, 0, TraceOptions(duration_s=900.0, rate_scale=3.0))
    assert len(x3) == pytest.approx(3 * len(base), rel=0.03)
    assert np.unique(x3.times).size == len(x3)


@pytest.mark.parametrize("gen", ["poisson", "daily", "mmpp", "flash", "ramp"])
def test_generators_hit_their_mean_and_are_seeded(gen):
    sc = load_scenario("default")
    # One full period of the daily cycle (the default scenario compresses a day into an hour).
    spec = sc.workload.model_copy(update={"generator": gen, "mean_rate": 200.0, "duration_s": 3600.0})
    sc = sc.model_copy(update={"workload": spec})
    a, b = build_arrivals(sc, 4), build_arrivals(sc, 4)
    assert np.array_equal(a.times, b.times)
    expected = 200.0
    if gen == "flash":  # mean_rate is the base load; the spike adds (factor-1) x its length
        expected = 200.0 * (1 + 5 * 180 / 3600)
    assert a.mean_rate == pytest.approx(expected, rel=0.08)
    burst = np.histogram(a.times, bins=np.arange(0, 3601, 10))[0]
    if gen in ("mmpp", "flash"):
        assert burst.max() > 2.0 * np.median(burst)


def test_flash_crowd_spike_is_5_to_10x():
    sc = load_scenario("default")
    spec = sc.workload.model_copy(update={"generator": "flash", "mean_rate": 50.0, "duration_s": 1200.0})
    a = build_arrivals(sc.model_copy(update={"workload": spec}), 0)
    per_10s = np.histogram(a.times, bins=np.arange(0, 1201, 10))[0]
    assert 5 <= per_10s.max() / np.median(per_10s) <= 10


def test_a_bad_trace_option_names_the_flag_as_typed() -> None:
    import pytest

    from autotune.errors import InputError
    from autotune.scenario import load_scenario
    from autotune.workload.arrivals import TraceOptions

    spec = load_scenario("default").workload
    with pytest.raises(InputError, match="--duration: must be positive"):
        TraceOptions(duration_s=-1.0).apply(spec)
    with pytest.raises(InputError, match="--time-scale: must be positive"):
        TraceOptions(time_scale=0.0).apply(spec)


def test_duration_keeps_the_first_seconds_of_a_synthetic_workload():
    """``--duration`` cuts a generator's run; it does not squeeze the workload into S seconds."""
    sc = load_scenario("live-demo")  # flash crowd over 240 s: 6 req/s, 36 from 60 s to 150 s
    whole = build_arrivals(sc, 0)
    cut = build_arrivals(sc, 0, TraceOptions(duration_s=100.0))
    assert cut.duration_s == 100.0 and cut.times.max() < 100.0

    def rate(a, lo, hi):
        return float(np.sum((a.times >= lo) & (a.times < hi))) / (hi - lo)

    for a in (whole, cut):
        assert rate(a, 0, 55) == pytest.approx(6.0, rel=0.25)  # calm until 60 s in both
        assert rate(a, 70, 100) == pytest.approx(36.0, rel=0.15)
    longer = build_arrivals(sc, 0, TraceOptions(duration_s=480.0))  # longer than the workload: run for S
    assert longer.duration_s == 480.0 and longer.times.max() > 400.0


def test_stepped_poisson_keeps_each_steps_rate():
    from autotune.workload.arrivals import stepped_poisson

    a = stepped_poisson(((2.0, 100.0), (20.0, 100.0)), seed=3)
    assert a.duration_s == 200.0 and np.all(np.diff(a.times) >= 0)
    assert np.sum(a.times < 100) == pytest.approx(200, rel=0.2)
    assert np.sum(a.times >= 100) == pytest.approx(2000, rel=0.1)
    assert np.array_equal(a.times, stepped_poisson(((2.0, 100.0), (20.0, 100.0)), seed=3).times)
