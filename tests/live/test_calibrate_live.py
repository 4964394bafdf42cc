"""``autotune calibrate`` against a real local Ray Serve app and a real Prometheus server (no mocks).

The app is deployed from a "truth" scenario whose pool carries a service profile the starting scenario
does not know: fixed time 1.5x and per-item time 1.3x the catalog's (180 + 107.2 ms per item), which the
emulated replica sleeps. A load that steps from 2 to 10 req/s over two replicas forms batches of one to
four; calibration from the cluster's own metrics must recover what the replicas sleep, and the simulator
with the calibrated scenario must predict the p50 and p99 the load generator measured closer than the
starting scenario does.

Serve's default batch-time buckets (100 ms wide here) leave fixed and per-item time trading off against
each other: over runs on this machine (2 cores) the fits gave 163-188 ms fixed and 103-117 ms per item
(standard errors 6-17 and 4-11 ms), while the batch time at every size run (1 to 4) came within 4% of the
truth. One run: measured p50 809 ms, p99 1396 ms; the starting scenario predicts 524 / 744 (35% and 47%
low), the calibrated one 716 / 1258 from Prometheus and 739 / 1287 from the live scrape (9-12% and 8-10%
low).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from autotune.cli import main
from autotune.live.loadgen import replay, summarize
from autotune.live.localray import LocalRay
from autotune.policies.static import StaticPolicy
from autotune.scenario import Scenario, load_scenario
from autotune.sim.run import simulate
from autotune.workload.arrivals import Arrivals, stepped_poisson
from tests.live.conftest import Background, Prometheus
from tests.live.test_real_cluster import deploy

pytestmark = pytest.mark.integration  # every test here runs against a real Ray cluster and Prometheus

FIXED_X, PER_ITEM_X = 1.5, 1.3
BATCH_WAIT_S = 0.3
REPLICAS = 2  # twice the batches a replica alone would run at the same load per replica
STEPS = ((2.0, 18.0), (6.0, 18.0), (10.0, 18.0))  # (req/s, seconds): batches of 1 first, of 3-4 last
STEP_S = 6.0
# The batch time at each size run is recovered within this of what the replicas sleep (asyncio's sleep and
# Serve's batch bookkeeping add a millisecond or two to every batch) ...
BATCH_TOLERANCE = 0.06
# ... and each term within three of the fit's standard errors, which the default buckets leave at up to 10%.
TERM_TOLERANCE = 0.25


def scenarios(tmp: Path) -> tuple[Path, Path, dict[str, float]]:
    """(the starting scenario, the truth the replicas sleep, the truth's profile): live-demo with a longer
    batch wait (larger batches, whose times cross more of Serve's histogram buckets) and two replicas."""
    data = yaml.safe_load(Path(load_scenario("live-demo").source).read_text())
    data["pools"][0].update(batch_wait_timeout_s=BATCH_WAIT_S, initial_replicas=REPLICAS)
    start = tmp / "start.yaml"
    start.write_text(yaml.safe_dump(data, sort_keys=False))
    rt = load_scenario(start).runtime_pools()[0]
    truth = {"fixed_ms": rt.fixed_ms * FIXED_X, "per_item_ms": rt.per_item_ms * PER_ITEM_X,
             "noise_sigma": rt.noise_sigma}
    data["pools"][0]["service"] = truth
    path = tmp / "truth.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return start, path, truth


def predicted(sc: Scenario, arrivals: Arrivals) -> tuple[float, float]:
    res = simulate(sc, arrivals, StaticPolicy({"l4": REPLICAS}, {"l4": sc.pools[0].batch_size}), seed=0)
    p50, p99 = np.percentile(res.latencies_ms(), [50, 99])
    return float(p50), float(p99)


def test_calibrate_recovers_what_the_replicas_sleep(ray_cluster: LocalRay, prometheus: Prometheus,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start_path, truth_path, truth = scenarios(tmp_path)
    deploy(ray_cluster, "calib", str(truth_path))
    arrivals = stepped_poisson(STEPS)
    live_out = tmp_path / "live.yaml"
    live = Background(main, ["calibrate", "--scenario", str(start_path), "--app", "calib", "--metrics-url",
                             ray_cluster.metrics_url, "--span", str(arrivals.duration_s + 6), "--step", str(STEP_S),
                             "--out", str(live_out)])
    results = replay(ray_cluster.http_url, arrivals)
    assert live.value(60) == 0
    time.sleep(4)  # Ray exports every second, Prometheus scrapes every second
    out = tmp_path / "calibrated.yaml"
    assert main(["calibrate", "--scenario", str(start_path), "--app", "calib", "--prometheus", prometheus.url,
                 "--last", str(arrivals.duration_s + 12), "--step", str(STEP_S), "--out", str(out)]) == 0
    measured = summarize(results)
    assert measured["ok"] == measured["requests"]
    start = load_scenario(start_path)
    before = predicted(start, arrivals)
    figures = {}
    for name, path in (("prometheus", out), ("live", live_out)):
        cal = load_scenario(path)
        svc = cal.pools[0].service
        assert svc is not None
        for size in range(1, 5):
            true_ms = truth["fixed_ms"] + size * truth["per_item_ms"]
            assert svc.fixed_ms + size * svc.per_item_ms == pytest.approx(true_ms, rel=BATCH_TOLERANCE), (name, svc)
        rec = yaml.safe_load(path.read_text())["calibration"]["pools"]["l4"]
        for term in ("fixed_ms", "per_item_ms"):
            err = abs(getattr(svc, term) - truth[term])
            assert err <= 3 * rec[f"{term}_se"] and err <= TERM_TOLERANCE * truth[term], (name, term, svc, rec)
        after = predicted(cal, arrivals)
        figures[name] = (svc, after)
        for k, q in enumerate(("p50_ms", "p99_ms")):
            err_before = abs(before[k] - measured[q]) / measured[q]
            err_after = abs(after[k] - measured[q]) / measured[q]
            assert err_after < err_before, (name, q, before[k], after[k], measured[q])
    print(f"truth {truth}; measured p50 {measured['p50_ms']:.0f} p99 {measured['p99_ms']:.0f} ms; "
          f"uncalibrated {before[0]:.0f} / {before[1]:.0f}; "
          + "; ".join(f"{n}: {s.fixed_ms:.1f} + {s.per_item_ms:.1f}/item sigma {s.noise_sigma} "
                      f"load {s.load_s} -> {a[0]:.0f} / {a[1]:.0f}" for n, (s, a) in figures.items()))
    # The file differs from live-demo only in the pool's service profile and the calibration record.
    got = yaml.safe_load(out.read_text())
    want = yaml.safe_load(Path(start.source).read_text())
    assert {k for k in got if got[k] != want.get(k)} == {"pools", "calibration"}
    assert got["pools"][0].keys() - want["pools"][0].keys() == {"service"}
    assert got["calibration"]["source"] == prometheus.url and got["calibration"]["pools"]["l4"]["batches"] >= 30


def test_calibrate_refuses_an_app_without_batches(ray_cluster: LocalRay, prometheus: Prometheus, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "none.yaml"
    assert main(["calibrate", "--scenario", "live-demo", "--app", "no-such-app", "--prometheus", prometheus.url,
                 "--last", "60", "--out", str(out)]) == 2
    msg = capsys.readouterr().err
    assert prometheus.url in msg and "ray_serve_batch_execution_time_ms" in msg and "no batches recorded" in msg
    assert not out.exists()
