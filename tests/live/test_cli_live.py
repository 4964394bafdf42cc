"""``autotune control`` as a newcomer starts it against a real local Ray Serve: a wrong app, a wrong address,
and a stop by SIGTERM (the controller runs as its own process, as a user runs it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from autotune.live.localray import LocalRay
from tests.live.conftest import read_jsonl, run_cli, wait_for
from tests.live.test_real_cluster import deploy

pytestmark = pytest.mark.integration  # every test here runs against a real Ray cluster

ROOT = Path(__file__).resolve().parents[2]


def test_an_app_that_does_not_exist_is_an_error_naming_those_that_do(ray_cluster: LocalRay,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    deploy(ray_cluster, "present")
    # The scenario's name is the app's by default: live-demo is not deployed here.
    assert run_cli("control", "--serve-address", ray_cluster.dashboard_url, "--metrics-port", "0",
                   "--prometheus-url", ray_cluster.metrics_url, "--duration", "1") == 2
    msg = capsys.readouterr().out
    assert "--app" in msg and "'live-demo'" in msg and "deployed: present" in msg


def test_the_serve_proxy_is_not_taken_for_a_dashboard(ray_cluster: LocalRay,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    deploy(ray_cluster, "present")  # routed at "/": the proxy hands the dashboard's path to the app, which answers
    assert run_cli("control", "--serve-address", ray_cluster.http_url, "--app", "present", "--metrics-port", "0",
                   "--duration", "1") == 2
    msg = capsys.readouterr().out
    assert "--serve-address" in msg and "is not a Ray dashboard" in msg and "8265" in msg


def test_sigterm_logs_the_stop_and_the_last_applied_state(ray_cluster: LocalRay, tmp_path: Path) -> None:
    deploy(ray_cluster, "stopme")
    log = tmp_path / "d.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "autotune", "control", "--serve-address", ray_cluster.dashboard_url, "--app", "stopme",
         "--prometheus-url", ray_cluster.metrics_url, "--metrics-port", "0", "--policy", "static:2",
         "--interval", "1", "--log", str(log)],
        cwd=ROOT, env={**os.environ, "RAY_AUTH_MODE": "disabled"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        def applied() -> bool:
            return log.exists() and any(r.get("actions") for r in read_jsonl(log))

        assert wait_for(applied, 60, 0.5), "the controller applied nothing"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    last = read_jsonl(log)[-1]
    assert last["event"] == "stop" and last["why"] == "SIGTERM" and last["decisions"] >= 1
    assert last["applied"]["replicas"] == {"l4": 2}
    assert "stopped (SIGTERM)" in err and "l4=2 (batch 4)" in err


def test_metrics_endpoints_are_found_from_the_dashboard(ray_cluster: LocalRay, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """No --prometheus-url: the node's endpoint (not on Ray's default port here) comes from the dashboard."""
    deploy(ray_cluster, "found")
    log = tmp_path / "d.jsonl"
    port = ray_cluster.metrics_url.rsplit(":", 1)[1].split("/")[0]
    assert run_cli("control", "--serve-address", ray_cluster.dashboard_url, "--app", "found", "--metrics-port", "0",
                   "--policy", "static:1", "--interval", "1", "--duration", "4", "--log", str(log)) == 0
    assert f":{port}/metrics" in capsys.readouterr().err
    recs = read_jsonl(log)
    assert not [e for r in recs for e in r.get("errors") or [] if e["cause"] == "metrics"]
    assert any(r.get("observation") for r in recs if r["event"] == "decision")
