"""The control loop's logic with an injected clock and an in-memory cluster (no waiting, no Ray).

The cluster here is a stand-in for the loop's three callables (state, scrape,
actuator) only; Ray Serve itself is exercised in test_real_cluster.py.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from autotune.core import GuardConfig
from autotune.core.types import Decision, Observation, PolicyState
from autotune.live import promtext as pt
from autotune.live.controller import Controller, ControllerConfig
from autotune.live.http import RequestRejected, RetryingClient, Unreachable
from autotune.live.serve_state import AppState, app_state
from autotune.registry import make_policy
from autotune.scenario import load_scenario

APP = "live-demo"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class Cluster:
    """Replica targets, cumulative counters, and switches to break the endpoints."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.target = 2
        self.batch = 4
        self.rate = 30.0
        self.ongoing = 12.0
        self.dashboard_down = False
        self.metrics_down = False
        self.applied: list[Decision] = []
        self.dead: list[str] = []  # Serve's recent_dead_replicas: stopped by a scale-down or died

    def state(self) -> AppState | None:
        if self.dashboard_down:
            raise Unreachable("dashboard down")
        reps = [{"state": "RUNNING", "pid": 100 + i, "node_id": "n"} for i in range(self.target)]
        dep = {"replicas": reps, "target_num_replicas": self.target,
               "recent_dead_replicas": [{"replica_id": r} for r in self.dead],
               "deployment_config": {"user_config": {"max_batch_size": self.batch}}}
        return app_state({"applications": {APP: {"external_scaler_enabled": True, "deployments": {"l4": dep}}}},
                         APP)

    def scrape(self) -> pt.Scrape:
        if self.metrics_down:
            raise Unreachable("metrics down")
        n = self.rate * (self.clock() - 1000.0)
        return pt.parse_prometheus(
            f'ray_serve_num_router_requests_total{{application="{APP}",deployment="router"}} {n}\n'
            f'ray_serve_num_http_requests_total{{application="{APP}",status_code="200"}} {n}\n'
            f'ray_serve_num_ongoing_requests_at_replicas{{application="{APP}",deployment="l4"}} {self.ongoing}\n'
            f'ray_serve_http_request_latency_ms_bucket{{application="{APP}",status_code="200",le="500"}} {n}\n'
            f'ray_serve_http_request_latency_ms_bucket{{application="{APP}",status_code="200",le="+Inf"}} {n}\n'
            f'ray_serve_http_request_latency_ms_count{{application="{APP}",status_code="200"}} {n}\n')

    def apply(self, decision: Decision, state: AppState) -> list[str]:
        if self.dashboard_down:
            raise Unreachable("dashboard down")
        self.applied.append(decision)
        acts = []
        if decision.replicas["l4"] != self.target:
            acts.append(f"scale l4: {self.target} -> {decision.replicas['l4']}")
            # Serve lists replicas a scale-down stopped among the dead too.
            self.dead += [f"stopped-{len(self.dead) + i}" for i in range(self.target - decision.replicas["l4"])]
            self.target = decision.replicas["l4"]
        return acts


def _controller(policy: str = "hpa", dry_run: bool = False, guards: GuardConfig | None = None,
                scenario: str = "live-demo") -> tuple[Controller, Cluster, FakeClock, list[dict[str, Any]]]:
    clock = FakeClock()
    cluster = Cluster(clock)
    sc = load_scenario(scenario)
    log: list[dict[str, Any]] = []
    cfg = ControllerConfig(APP, interval_s=5.0, sample_s=1.0, dry_run=dry_run,
                           guards=guards or GuardConfig(down_cooldown_s=0.0))
    ctl = Controller(cfg, sc, make_policy(policy, sc), cluster.state, cluster.scrape, cluster, log.append,
                     clock=clock, sleep=clock.sleep)
    return ctl, cluster, clock, log


def _decisions(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in log if r["event"] == "decision"]


def test_scales_up_on_load_and_logs_reason_and_guards() -> None:
    ctl, cluster, _, log = _controller()
    ctl.run(duration_s=20.0)
    decs = _decisions(log)
    assert len(decs) == 4  # every 5 s over 20 s
    first = decs[0]
    # 12 ongoing over 2 replicas vs target 4 per replica: HPA wants 3.
    assert first["decision"]["replicas"] == {"l4": 3} and first["actions"] == ["scale l4: 2 -> 3"]
    assert "per replica" in first["reason"] and first["observation"]["rate"] == pytest.approx(30.0)
    assert cluster.target == 3


def test_guard_changes_are_logged() -> None:
    ctl, cluster, _, log = _controller(guards=GuardConfig(max_step_up=1, max_step_up_ratio=0.0))
    cluster.ongoing = 40.0  # HPA wants 6 (its own bounds), the step guard allows 3
    ctl.run(duration_s=5.0)
    rec = _decisions(log)[0]
    assert rec["decision"]["replicas"] == {"l4": 6} and rec["applied"]["replicas"] == {"l4": 3}
    assert rec["guards"] == ["l4: 6 -> 3 (max step +1/-1)"]


def test_rides_out_an_unreachable_dashboard() -> None:
    ctl, cluster, _, log = _controller()
    cluster.dashboard_down = True
    ctl.run(duration_s=15.0)
    decs = _decisions(log)
    assert len(decs) == 3 and all(d["errors"][0]["cause"] == "dashboard" for d in decs)
    assert cluster.applied == [] and cluster.target == 2
    cluster.dashboard_down = False
    ctl.run(duration_s=25.0)
    assert cluster.target == 3 and not _decisions(log)[-1]["errors"]


def test_missing_metrics_hold_instead_of_scaling_down() -> None:
    ctl, cluster, _, log = _controller()
    cluster.target, cluster.ongoing, cluster.metrics_down = 5, 0.0, True
    ctl.run(duration_s=10.0)
    decs = _decisions(log)
    assert all(d["applied"]["replicas"] == {"l4": 5} for d in decs)
    assert "stale" in decs[0]["reason"] and any(r["event"] == "error" for r in log)
    cluster.metrics_down = False
    ctl.run(duration_s=30.0)
    assert cluster.target < 5  # data back: idle pool scales down, one step at a time


def test_dry_run_decides_but_changes_nothing() -> None:
    ctl, cluster, _, log = _controller(dry_run=True)
    ctl.run(duration_s=10.0)
    decs = _decisions(log)
    assert cluster.applied == [] and cluster.target == 2
    assert decs[0]["actions"] == ["(dry run) scale l4: 2 -> 3"] and decs[0]["dry_run"]


@pytest.mark.parametrize("policy", ["headroom", "burst", "predictive", "predictive+crowd:3"])
def test_autotunes_rules_drive_the_loop_with_persistable_state(policy: str) -> None:
    ctl, cluster, _, log = _controller(policy=policy)
    cluster.rate = 12.0  # req/s: a few live-demo replicas' worth
    ctl.run(duration_s=30.0)
    decs = _decisions(log)
    assert len(decs) == 6 and all(d["reason"] for d in decs)
    assert 1 <= cluster.target <= 8 and cluster.applied  # it scaled, within the pool's bounds
    json.dumps(ctl.policy_state)  # a restarted controller can resume it


class Exploding:
    name = "exploding"

    def initial_state(self) -> PolicyState:
        return {}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        raise RuntimeError("boom")


def test_a_failing_policy_holds() -> None:
    ctl, cluster, _, log = _controller()
    ctl.policy = Exploding()
    ctl.run(duration_s=5.0)
    rec = _decisions(log)[0]
    assert rec["errors"][0]["cause"] == "policy" and rec["applied"]["replicas"] == {"l4": 2}


@pytest.fixture()
def flaky_server() -> Iterator[tuple[str, list[int]]]:
    """A real HTTP server answering the listed statuses in turn (then 200)."""
    plan: list[int] = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            code = plan.pop(0) if plan else 200
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/", plan
    srv.shutdown()


def test_http_retries_5xx_with_backoff_then_gives_up(flaky_server: tuple[str, list[int]]) -> None:
    url, plan = flaky_server
    waits: list[float] = []
    c = RetryingClient(timeout_s=2.0, retries=2, backoff_s=0.5, sleep=waits.append)
    plan.extend([503, 502])
    assert c.get_json(url) == {"ok": True} and waits == [0.5, 1.0]
    plan.extend([503, 503, 503])
    with pytest.raises(Unreachable):
        c.get_json(url)
    plan.append(404)
    with pytest.raises(RequestRejected):
        c.get_json(url)
    with pytest.raises(Unreachable):
        RetryingClient(timeout_s=0.5, retries=1, backoff_s=0.0).get_json("http://127.0.0.1:9/")


def test_a_trained_policy_file_runs_in_the_loop_or_fails_at_start_up() -> None:
    """The ``.zip`` path: the simulator's loader, fed live observations; a scenario it was not trained
    for (other batch sizes, so other inputs) is refused at start-up, not at every interval."""
    from autotune.errors import InputError
    from autotune.live.controller import probe_policy
    from autotune.paths import POLICIES

    path = POLICIES / "default.zip"
    if not path.exists():
        pytest.skip("no trained policies/default.zip in this checkout")
    ctl, cluster, _, log = _controller(policy=str(path), scenario="default")  # one pool named l4, as here
    probe_policy(ctl.policy, ctl.scenario)
    ctl.run(duration_s=15.0)
    decs = _decisions(log)
    assert len(decs) == 3 and not any(d["errors"] for d in decs)
    assert all(1 <= d["applied"]["replicas"]["l4"] <= 32 for d in decs)
    live_demo = load_scenario("live-demo")
    with pytest.raises(InputError, match="cannot decide for scenario live-demo"):
        probe_policy(make_policy(str(path), live_demo), live_demo)


def test_replicas_stopped_by_a_scale_down_are_not_deaths() -> None:
    """Serve's recent_dead_replicas also lists replicas a scale-down stopped: only the rest are deaths."""
    ctl, cluster, _, log = _controller(guards=GuardConfig(down_cooldown_s=0.0, max_step_down=10))
    cluster.target, cluster.ongoing = 6, 4.0  # HPA wants 1: scale down 6 -> 1
    ctl.run(duration_s=10.0)
    assert cluster.target == 1 and len(cluster.dead) == 5
    assert not any(n for r in _decisions(log) for n in r["guards"] if "died" in n)
    assert all(r["observation"]["pools"]["l4"]["preemptions"] == 0 for r in _decisions(log))
    cluster.dead.append("crashed")  # a replica dies at a steady target; Serve replaces it
    ctl.run(duration_s=15.0)  # one more decision (duration counts from the controller's start)
    assert [n for r in _decisions(log) for n in r["guards"]] == ["l4: 1 replica(s) died (crashed)"]
    assert sum(r["observation"]["pools"]["l4"]["preemptions"] for r in _decisions(log)) == 1
