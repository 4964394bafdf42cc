"""``autotune control --prime-from``: a starting controller primed from a real Prometheus server's history of a
real Ray Serve app (Debian's prometheus scraping the test cluster every second; no mock of either)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pytest

from autotune.live.cli import _controller_from_args, register
from autotune.live.loadgen import replay
from autotune.live.localray import LocalRay
from tests.live.conftest import Prometheus, constant_load, run_cli
from tests.live.test_real_cluster import Running, deploy

pytestmark = pytest.mark.integration  # every test here runs against a real Ray cluster and Prometheus

POLICY = "predictive+crowd:3"  # both layers keep a per-window rate history: what priming must rebuild


def build(cluster: LocalRay, *argv: str):  # type: ignore[no-untyped-def]
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["control", "--serve-address", cluster.dashboard_url, "--prometheus-url",
                              cluster.metrics_url, "--metrics-port", "0", *argv])
    return _controller_from_args(args)


def test_primed_controller_starts_from_the_state_of_one_that_ran_all_along(
        ray_cluster: LocalRay, prometheus: Prometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deploy(ray_cluster, "prime")
    common = ("--app", "prime", "--policy", POLICY, "--interval", "3", "--dry-run")
    along = Running(ray_cluster, *common, "--metrics-port", "0", "--log", str(tmp_path / "along.jsonl"))
    try:
        sent = replay(ray_cluster.http_url, constant_load(20.0, 45.0))
        time.sleep(4)  # Ray exports every second, Prometheus scrapes every second
        ctl, close = build(ray_cluster, *common, "--prime-from", prometheus.url, "--prime-s", "120",
                           "--log", str(tmp_path / "primed.jsonl"))
        close()
        running = along.ctl.policy_state
    finally:
        along.finish()
    assert "primed the policy state from 40 windows (2 min)" in capsys.readouterr().err
    assert ctl.time_offset == pytest.approx(120.0)  # policy time goes on after the replayed windows
    # Windows before the app's first request have no metrics, and neither controller decided on them.
    primed = np.array(ctl.policy_state["rates"]) * 3
    ran = np.array(running["rates"]) * 3
    # Every request the load generator sent is in the primed history (the app saw no other load) ...
    assert primed.sum() == pytest.approx(len(sent), rel=0.03)
    # ... and when: counted back from now, the arrivals agree with those the running controller counted
    # to within one window of load at every window (the two loops' windows start at different instants).
    n = min(primed.size, ran.size)
    back_p, back_r = np.cumsum(primed[::-1][:n]), np.cumsum(ran[::-1][:n])
    assert np.abs(back_p - back_r).max() <= 3 * 20 * 1.5, (primed.tolist(), ran.tolist())
    assert abs(primed.size - ran.size) <= 1 and primed.size >= 15


def test_prime_from_refuses_an_unreachable_prometheus(ray_cluster: LocalRay,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    deploy(ray_cluster, "prime-dead")
    dead = "http://127.0.0.1:9"  # discard port: nothing answers
    assert run_cli("control", "--serve-address", ray_cluster.dashboard_url, "--app", "prime-dead", "--dry-run",
                   "--metrics-port", "0", "--prime-from", dead, "--duration", "0.1") == 2
    out = capsys.readouterr().out
    assert "--prime-from" in out and "cannot read the history" in out and out.count("\n") == 1
