"""``autotune calibrate`` end to end on a fake Prometheus server holding synthetic Serve metrics."""

from __future__ import annotations

import difflib
import math
import time
from pathlib import Path

import pytest
import yaml

from autotune.calibrate import measure
from autotune.cli import main
from autotune.live import history
from autotune.live.observe import Sample
from autotune.scenario import load_scenario
from tests.calibrate.synthetic import FINE_BOUNDS, fake_prometheus, matrix

FIXED, PER_ITEM, SIGMA = 180.0, 104.7, 0.05
STEPS, STEP_S = 40, 10.0


def test_measure_windows_per_replica() -> None:
    body = matrix("demo", "l4", FIXED, PER_ITEM, SIGMA, steps=STEPS, step_s=STEP_S, start=0.0)
    series = history.parse_matrix(body, "test")
    samples = [Sample(t, history.scrape_at(series, t)) for t in (k * STEP_S for k in range(STEPS + 1))]
    assert measure.replicas(samples, "demo", "l4") == ["l4#0", "l4#1"]
    ws = measure.batch_windows(samples, "demo", "l4", 4)
    assert len(ws) == 2 * STEPS and all(w.batches >= 10 and sum(w.sizes) == w.batches for w in ws)
    # Sizes 3 and 4 share a size bucket; the utilization histogram (75% and 100% of 4) tells them apart.
    assert all(len(w.sizes) == 4 for w in ws) and sum(w.sizes[2] for w in ws) > 0 and sum(w.sizes[3] for w in ws) > 0
    assert measure.batch_sizes([(1.0, 2), (2.0, 0), (4.0, 4), (math.inf, 0)], [], 4) == (2, 0, 2, 2)
    assert measure.startups(samples, "demo", "l4") == [(1000.0, 0.0), (2000.0, 0.0), (5000.0, 2.0), (math.inf, 2.0)]
    counts, slot = measure.arrival_counts(samples, "demo")
    assert slot == STEP_S and len(counts) == STEPS and sum(counts) > 0
    assert measure.batch_windows(samples, "other", "l4", 4) == []


def calibrate(tmp_path: Path, body: dict, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "calibrated.yaml"
    with fake_prometheus(body) as url:
        rc = main(["calibrate", "--scenario", "live-demo", "--app", "demo", "--prometheus", url,
                   "--last", str(STEPS * STEP_S), "--step", str(STEP_S), "--out", str(out), *extra])
    return rc, out


def test_writes_a_scenario_that_loads_and_differs_only_in_the_fitted_fields(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = matrix("demo", "l4", FIXED, PER_ITEM, SIGMA, steps=STEPS, step_s=STEP_S,
                  start=time.time() - STEPS * STEP_S - 1, time_bounds=FINE_BOUNDS)
    rc, out = calibrate(tmp_path, body)
    assert rc == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    assert "fixed_ms" in printed and "per_item_ms" in printed and "batches in" in printed
    sc = load_scenario(out)
    svc = sc.pools[0].service
    assert svc is not None
    assert svc.fixed_ms == pytest.approx(FIXED, rel=0.03) and svc.per_item_ms == pytest.approx(PER_ITEM, rel=0.03)
    assert svc.load_s == pytest.approx(3.5)  # the median, interpolated within (2, 5] s
    rt = sc.runtime_pools()[0]
    assert (rt.fixed_ms, rt.per_item_ms, rt.load_s) == (svc.fixed_ms, svc.per_item_ms, svc.load_s)
    rec = sc.calibration
    assert rec["app"] == "demo" and rec["pools"]["l4"]["batch_sizes_seen"] == 4
    assert rec["pools"]["l4"]["time_bucket_worst"] < 0.05
    # A text diff against the starting file adds the pool's service line and the record, and changes nothing else
    # (live-demo's flash workload keeps its mean_rate: a span's mean does not measure a flash crowd's base).
    start = Path(load_scenario("live-demo").source).read_text().splitlines()
    diff = [d for d in difflib.unified_diff(start, out.read_text().splitlines(), lineterm="", n=0)
            if d[:1] in "+-" and not d.startswith(("+++", "---"))]
    assert all(d.startswith("+") for d in diff)
    assert diff[0].startswith("+    service: {fixed_ms: ") and diff[1].startswith("+# Written by autotune calibrate")
    assert diff[2] == "+calibration:"
    # Calibrating the calibrated file replaces the profile and the record rather than adding a second one.
    rc2, out2 = calibrate(tmp_path / "again", body, "--scenario", str(out))
    assert rc2 == 0 and out2.read_text().count("calibration:") == 1 and out2.read_text().count("service:") == 1


def test_a_poisson_workload_takes_the_measured_rate(tmp_path: Path) -> None:
    data = yaml.safe_load(Path(load_scenario("live-demo").source).read_text())
    data["workload"] = {"kind": "synthetic", "generator": "poisson", "mean_rate": 6, "duration_s": 240}
    src = tmp_path / "poisson.yaml"
    src.write_text(yaml.safe_dump(data, sort_keys=False))
    body = matrix("demo", "l4", FIXED, PER_ITEM, SIGMA, steps=STEPS, step_s=STEP_S,
                  start=time.time() - STEPS * STEP_S - 1)
    rc, out = calibrate(tmp_path, body, "--scenario", str(src))
    assert rc == 0
    assert load_scenario(out).workload.mean_rate == pytest.approx(5.0, rel=0.1)  # Poisson(50) per 10 s


@pytest.mark.parametrize(("body", "field"), [
    (matrix("demo", "l4", FIXED, PER_ITEM, SIGMA, steps=2, step_s=STEP_S, start=0.0),
     'ray_serve_batch_execution_time_ms{application="demo",deployment="l4"}: no batches recorded'),
    ({"status": "error", "error": "bad query"}, "status: Prometheus answered bad query"),
])
def test_bad_or_thin_data_is_one_line_and_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 body: dict, field: str) -> None:
    # Samples far from now: the series are stale at every sample, so no batch is recorded in the span.
    rc, out = calibrate(tmp_path, body)
    err = capsys.readouterr().err
    assert rc == 2 and field in err and err.count("\n") == 1 and not out.exists()


def test_thin_batches_name_the_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = matrix("demo", "l4", FIXED, PER_ITEM, SIGMA, steps=STEPS, step_s=STEP_S,
                  start=time.time() - STEPS * STEP_S - 1, max_batch=1)
    rc, out = calibrate(tmp_path, body)
    err = capsys.readouterr().err
    assert rc == 2 and "1 batch size seen" in err and 'deployment="l4"' in err and not out.exists()


def test_unreachable_prometheus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.yaml"
    rc = main(["calibrate", "--scenario", "live-demo", "--prometheus", "http://127.0.0.1:9", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--prometheus: cannot read the metrics" in err and not out.exists()


def _scrape(times_ms: list[float], sizes: list[int]) -> dict:
    """A replica's cumulative batch histograms after the batches with these times ended and these sizes started."""
    lab = (("application", "demo"), ("deployment", "l4"), ("replica", "l4#0"))
    out: dict = {f"{measure.BATCH_EXEC}_count": [(lab, len(times_ms))],
                 f"{measure.BATCH_SIZE}_count": [(lab, len(sizes))]}
    for name, values, bounds in ((measure.BATCH_EXEC, times_ms, (300.0, 400.0, 700.0)),
                                 (measure.BATCH_SIZE, sizes, (1.0, 2.0, 4.0))):
        out[f"{name}_bucket"] = [((*lab, ("le", str(b))), sum(v <= b for v in values)) for b in bounds]
        out[f"{name}_bucket"].append(((*lab, ("le", "+Inf")), len(values)))
    return out


def test_windows_end_only_where_no_batch_was_running() -> None:
    # Two batches of 1 (300 ms each) end, then a batch of 4 starts before the sample and ends (600 ms) after it.
    samples = [Sample(0.0, {}), Sample(5.0, _scrape([290, 290], [1, 1, 4])),
               Sample(10.0, _scrape([290, 290, 600], [1, 1, 4])),
               Sample(15.0, _scrape([290, 290, 600, 350], [1, 1, 4, 2]))]
    ws = measure.batch_windows(samples, "demo", "l4", 4)
    # The sample at 5 s held the batch of 4's size but not its time: no window ends there.
    assert [(w.sizes, w.exec_bins) for w in ws] == [
        ((2.0, 0.0, 0.5, 0.5), ((300.0, 2.0), (400.0, 0.0), (700.0, 1.0), (math.inf, 0.0))),
        ((0.0, 1.0, 0.0, 0.0), ((300.0, 0.0), (400.0, 1.0), (700.0, 0.0), (math.inf, 0.0)))]
    # A replica whose series disappear (it stopped) ends its windows there rather than reading as a reset.
    assert len(measure.batch_windows([*samples, Sample(20.0, {})], "demo", "l4", 4)) == 2
