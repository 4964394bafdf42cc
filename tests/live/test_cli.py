"""``autotune control`` / ``autotune loadgen`` command lines: start-up errors and an HTTP replay (fast)."""

from __future__ import annotations

import csv
import http.server
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from autotune.live.localray import free_port
from tests.live.conftest import read_jsonl, run_cli

DEAD = f"http://127.0.0.1:{free_port()}"  # nothing listens here


@pytest.mark.parametrize("argv, field", [
    (["--scenario", "no-such-scenario"], "no such scenario"),
    (["--policy", "bogus"], "unknown policy"),
    (["--interval", "0"], "--interval"),
    (["--max-step-down", "0"], "--max-step-down"),
    (["--max-step-down-ratio", "1.5"], "--max-step-down-ratio: input should be less than or equal to 1"),
    (["--placement-grace", "-1"], "--placement-grace"),
    (["--serve-address", "localhost:8265"], "--serve-address"),
    (["--prime-from", "localhost:9090"], "--prime-from"),
    (["--prime-s", "0"], "--prime-s"),
])
def test_control_rejects_bad_input_at_start_up(argv: list[str], field: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("control", "--metrics-port", "0", *argv) == 2
    assert field in capsys.readouterr().out


def test_control_rejects_a_bad_policy_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"not a zip")
    assert run_cli("control", "--metrics-port", "0", "--policy", str(bad)) == 2
    assert "broken.zip" in capsys.readouterr().out


def test_control_rejects_a_state_file_saved_by_another_policy(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"policy": "hpa", "scenario": "live-demo", "saved_at": time.time(), "t": 5.0,
                                 "policy_state": {}}))
    assert run_cli("control", "--metrics-port", "0", "--policy", "predictive", "--state", str(state)) == 2
    out = capsys.readouterr().out
    assert "state.json" in out and "policy" in out and "'hpa'" in out
    assert json.loads(state.read_text())["policy"] == "hpa"  # left as it was


def test_control_starts_and_keeps_running_with_the_dashboard_down(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "d.jsonl"
    t = time.monotonic()
    # It keeps trying for the whole run; having never seen the app, it exits 1 (it controlled nothing).
    assert run_cli("control", "--serve-address", DEAD, "--prometheus-url", DEAD + "/metrics", "--interval", "0.3",
                   "--metrics-port", "0", "--duration", "1.5", "--log", str(log)) == 1
    assert time.monotonic() - t < 30
    recs = read_jsonl(log)
    decisions = [r for r in recs if r["event"] == "decision"]
    assert decisions and all(r["errors"][0]["cause"] == "dashboard" for r in decisions)
    assert recs[-1]["event"] == "stop" and recs[-1]["decisions"] == 0 and recs[-1]["applied"] is None
    assert "without controlling anything" in capsys.readouterr().err


def test_control_refuses_to_prime_without_the_current_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("control", "--serve-address", DEAD, "--metrics-port", "0", "--prime-from", DEAD) == 2
    out = capsys.readouterr().out
    assert "--prime-from" in out and "current fleet" in out


def test_control_keeps_and_resumes_its_policy_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log, state = tmp_path / "d.jsonl", tmp_path / "state.json"
    # With the dashboard down it holds and asks no policy, so seed a state as a previous run would have left it.
    state.write_text(json.dumps({"policy": "predictive", "scenario": "live-demo", "saved_at": time.time(), "t": 40.0,
                                 "policy_state": {"rates": [3.0] * 8, "ratios": [], "lead_ratios": {}}}))
    assert run_cli("control", "--serve-address", DEAD, "--prometheus-url", DEAD + "/metrics", "--interval", "0.3",
                   "--metrics-port", "0", "--duration", "0.7", "--log", str(log), "--policy", "predictive",
                   "--state", str(state), "--prime-from", DEAD) == 1
    # A state saved minutes ago is exact; the history is not looked at (nothing answers at DEAD).
    assert "resumed the policy state saved" in capsys.readouterr().err


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = body["tokens"] < 100
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(json.dumps({"pool": "l4"}).encode())

    def log_message(self, *args: Any) -> None:
        pass


def test_loadgen_replays_a_trace_and_records_each_request(tmp_path: Path) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,tokens\n0.0,10\n0.2,10\n0.4,500\n0.6,10\n")
    out = tmp_path / "lat.csv"
    try:
        t = time.monotonic()
        assert run_cli("loadgen", "--url", f"http://127.0.0.1:{srv.server_address[1]}/", "--trace", str(trace),
                       "--duration", "1", "--out", str(out)) == 0
        assert time.monotonic() - t >= 0.6  # open loop: sent on the trace's schedule
    finally:
        srv.shutdown()
    rows = list(csv.DictReader(out.open()))
    assert [r["status"] for r in rows] == ["200", "200", "503", "200"]
    assert [float(r["arrival_s"]) for r in rows] == [0.0, 0.2, 0.4, 0.6]
    assert all(float(r["latency_ms"]) > 0 for r in rows) and rows[0]["pool"] == "l4"


def test_loadgen_rejects_a_bad_url() -> None:
    assert run_cli("loadgen", "--url", "127.0.0.1:8000", "--mean-rate", "1", "--duration", "1") == 2


def test_control_rejects_a_bad_rayservice_or_kubeconfig(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("control", "--metrics-port", "0", "--serve-address", DEAD, "--rayservice", "just-a-name") == 2
    assert "NAMESPACE/NAME" in capsys.readouterr().out
    bad = tmp_path / "kubeconfig"
    bad.write_text("not: [a kubeconfig")
    assert run_cli("control", "--metrics-port", "0", "--serve-address", DEAD, "--rayservice", "ml/vit",
                   "--kubeconfig", str(bad)) == 2


def test_importing_the_cli_plugin_loads_no_heavy_dependency() -> None:
    import subprocess
    import sys

    code = ("import sys, autotune.live.cli; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'httpx', 'kubernetes', 'aiohttp', "
            "'prometheus_client'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
