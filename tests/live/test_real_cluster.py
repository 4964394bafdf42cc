"""The live controller against a real local Ray cluster (fake GPUs, emulated model, no mocks).

The emulated replica sleeps for the live-demo scenario's batch time (its model,
vit-base-x20, is ViT-B/16 slowed 20x), so one replica serves about 6-9 req/s and
30-40 req/s needs several. ``mixed`` keeps plain vit-base, slowed by
``user_config.time_factor``.
Load stays under 40 req/s: this machine's Serve HTTP proxy saturates near 80-100.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from autotune.live.cli import _controller_from_args, register
from autotune.live.controller import Controller
from autotune.live.loadgen import replay, summarize
from autotune.live.localray import LocalRay, free_port
from autotune.live.serve_config import render
from autotune.live.serve_state import DeploymentState, app_state
from autotune.policies.static import StaticPolicy
from autotune.scenario import load_scenario
from tests.live.conftest import Background, FaultyProxy, constant_load, read_jsonl, run_cli, wait_for

pytestmark = pytest.mark.integration  # every test here runs against a real Ray cluster

MIXED_TIME_FACTOR = 20.0  # mixed's vit-base, slowed like live-demo's vit-base-x20


def deploy(cluster: LocalRay, app: str, scenario: str = "live-demo", mode: str = "external") -> None:
    cluster.deploy(render(load_scenario(scenario), app_name=app, mode=mode, route_prefix="/"))  # type: ignore[arg-type]


def pool(cluster: LocalRay, app: str, name: str = "l4") -> DeploymentState:
    st = app_state(cluster.details(), app)
    assert st is not None
    return st.deployments[name]


class Running:
    """``autotune control`` built from its command line, run in a thread until stopped."""

    def __init__(self, cluster: LocalRay, *argv: str, address: str | None = None) -> None:
        parser = argparse.ArgumentParser()
        register(parser.add_subparsers())
        args = parser.parse_args(["control", "--serve-address", address or cluster.dashboard_url,
                                  "--prometheus-url", cluster.metrics_url, *argv])
        self.ctl: Controller
        self.ctl, self.close = _controller_from_args(args)
        self.stop = threading.Event()
        self.thread = Background(self.ctl.run, None, self.stop.is_set)

    def finish(self) -> None:
        self.stop.set()
        self.thread.value(60)  # re-raises anything the loop raised: it must not have crashed
        self.close()


def test_scales_up_under_a_load_step_and_down_after(ray_cluster: LocalRay, tmp_path: Path) -> None:
    deploy(ray_cluster, "step")
    log = tmp_path / "decisions.jsonl"
    port = free_port()
    ctl = Running(ray_cluster, "--app", "step", "--policy", "ray-default", "--interval", "3", "--log", str(log),
                  "--metrics-port", str(port), "--max-step-down", "10", "--down-cooldown", "0")
    try:
        load = Background(replay, ray_cluster.http_url, constant_load(36.0, 30.0))
        assert wait_for(lambda: pool(ray_cluster, "step").running >= 3, 50), "no scale-up under 36 req/s"
        own = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'autotune_target_replicas{pool="l4"}' in own and "autotune_decisions_total" in own
        results = load.value(120)
        s = summarize(results, 1000)
        assert s["ok"] == s["requests"] and s["requests"] > 900
        peak = pool(ray_cluster, "step").target
        assert wait_for(lambda: pool(ray_cluster, "step").target == 1, 60), "no scale-down after the load"
    finally:
        ctl.finish()
    recs = [r for r in read_jsonl(log) if r["event"] == "decision"]
    ups = [r for r in recs if any(a.startswith("scale l4: 1 ->") for a in r["actions"])]
    assert ups and "requests vs target" in ups[0]["reason"]
    assert 3 <= peak <= 8 and all(r["applied"]["replicas"]["l4"] <= 8 for r in recs)


def test_shipped_trained_policy_drives_the_live_app(ray_cluster: LocalRay, tmp_path: Path) -> None:
    """policies/live-demo.zip (trained in the simulator on this scenario) scales the real app up under
    load and back down after it, with the same decoding as in training (reasons start with "rl:")."""
    deploy(ray_cluster, "rl")
    log = tmp_path / "decisions.jsonl"
    ctl = Running(ray_cluster, "--app", "rl", "--scenario", "live-demo", "--policy", "policies/live-demo.zip",
                  "--interval", "3", "--log", str(log), "--metrics-port", "0", "--max-step-down", "10",
                  "--down-cooldown", "0")
    try:
        load = Background(replay, ray_cluster.http_url, constant_load(30.0, 30.0))
        assert wait_for(lambda: pool(ray_cluster, "rl").running >= 3, 50), "no scale-up under 30 req/s"
        s = summarize(load.value(120), 1000)
        assert s["ok"] == s["requests"] and s["requests"] > 700
        assert wait_for(lambda: pool(ray_cluster, "rl").target <= 2, 60), "no scale-down after the load"
    finally:
        ctl.finish()
    recs = [r for r in read_jsonl(log) if r["event"] == "decision"]
    # every decision is the policy's, except holds while Serve's metrics did not exist yet
    assert recs and all(r["reason"].startswith(("rl: l4:", "metrics missing")) for r in recs)
    assert sum(r["reason"].startswith("rl: l4:") for r in recs) >= len(recs) // 2
    applied = [r["applied"]["replicas"]["l4"] for r in recs if "applied" in r]
    assert max(applied) >= 3 and all(1 <= n <= 8 for n in applied)


def test_bounds_respected(ray_cluster: LocalRay, tmp_path: Path) -> None:
    data = yaml.safe_load(Path(load_scenario("live-demo").source).read_text())
    data["name"] = "bounded"
    data["pools"][0].update(min_replicas=1, max_replicas=2, initial_replicas=1)
    path = tmp_path / "bounded.yaml"
    path.write_text(yaml.safe_dump(data))
    deploy(ray_cluster, "bounded", str(path))
    _pids_seen(ray_cluster.http_url, 4)  # request series exist from the first request: metrics are not missing
    for policy, want in (("static:5", 2), ("static:0", 1)):
        log = tmp_path / f"{policy}.jsonl"
        ctl = Running(ray_cluster, "--app", "bounded", "--scenario", str(path), "--policy", policy,
                      "--interval", "2", "--log", str(log), "--metrics-port", "0", "--up-cooldown", "0",
                      "--down-cooldown", "0")
        try:
            assert wait_for(lambda w=want: pool(ray_cluster, "bounded").target == w, 30)
            assert wait_for(lambda w=want: pool(ray_cluster, "bounded").running == w, 30)
        finally:
            ctl.finish()
        recs = [r for r in read_jsonl(log) if r["event"] == "decision"]
        assert all(r["applied"]["replicas"]["l4"] == want for r in recs)
        assert any("bounds 1..2" in n for r in recs for n in r["guards"])


def _pids_seen(url: str, n: int = 12) -> dict[int, int]:
    """pid -> max_batch_size reported by the replicas answering ``n`` concurrent requests."""
    import asyncio

    async def go() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30) as c:
            rs = await asyncio.gather(*(c.post(url, json={}) for _ in range(n)))
        return [r.json() for r in rs]

    return {r["pid"]: r["max_batch_size"] for r in asyncio.run(go())}


def test_batch_size_changes_in_place(ray_cluster: LocalRay, tmp_path: Path) -> None:
    deploy(ray_cluster, "batch")
    before = pool(ray_cluster, "batch")
    assert before.batch_size == 4 and _pids_seen(ray_cluster.http_url) == {before.pids[0]: 4}
    log = tmp_path / "d.jsonl"
    ctl = Running(ray_cluster, "--app", "batch", "--policy", "static", "--interval", "2", "--log", str(log),
                  "--metrics-port", "0")
    # The same decision scales to 2 and sets batch 8: the user_config update must not undo the scale.
    ctl.ctl.policy = StaticPolicy({"l4": 2}, {"l4": 8}, name="static-batch8")
    try:
        assert wait_for(lambda: pool(ray_cluster, "batch").batch_size == 8, 30)
        assert wait_for(lambda: pool(ray_cluster, "batch").running == 2, 40)
    finally:
        ctl.finish()
    after = pool(ray_cluster, "batch")
    assert before.pids[0] in after.pids, "the replica was restarted for a batch-size change"
    seen = _pids_seen(ray_cluster.http_url, 24)
    assert set(seen.values()) == {8} and before.pids[0] in seen
    assert after.target == 2
    acts = [a for r in read_jsonl(log) if r["event"] == "decision" for a in r["actions"]]
    assert "batch l4: 4 -> 8" in acts and "scale l4: 1 -> 2" in acts


def test_dry_run_changes_nothing(ray_cluster: LocalRay, tmp_path: Path) -> None:
    deploy(ray_cluster, "dry")
    before = pool(ray_cluster, "dry")
    log = tmp_path / "d.jsonl"
    ctl = Running(ray_cluster, "--app", "dry", "--policy", "hpa", "--interval", "2", "--dry-run", "--log", str(log),
                  "--metrics-port", "0")
    try:
        replay(ray_cluster.http_url, constant_load(20.0, 8.0))  # ~160 requests: HPA wants more replicas
    finally:
        ctl.finish()
    after = pool(ray_cluster, "dry")
    assert (after.target, after.pids, after.batch_size) == (1, before.pids, 4)
    recs = [r for r in read_jsonl(log) if r["event"] == "decision"]
    assert all(r["dry_run"] for r in recs)
    assert any(a.startswith("(dry run) scale l4: 1 ->") for r in recs for a in r["actions"])


def test_rides_out_an_unreachable_dashboard(ray_cluster: LocalRay, faulty_proxy: FaultyProxy,
                                            tmp_path: Path) -> None:
    deploy(ray_cluster, "outage")
    log = tmp_path / "d.jsonl"
    faulty_proxy.mode = "503"
    ctl = Running(ray_cluster, "--app", "outage", "--policy", "hpa", "--interval", "2", "--log", str(log),
                  "--metrics-port", "0", address=faulty_proxy.url)
    try:
        load = Background(replay, ray_cluster.http_url, constant_load(30.0, 40.0))
        assert wait_for(lambda: sum(r.get("errors") != [] for r in read_jsonl(log)) >= 2, 20)
        faulty_proxy.close()  # now connections are refused
        n = len(read_jsonl(log))
        assert wait_for(lambda: len(read_jsonl(log)) >= n + 2, 30)
        assert pool(ray_cluster, "outage").target == 1  # nothing applied while it could not see
        faulty_proxy.mode = "up"
        faulty_proxy.listen()
        assert wait_for(lambda: pool(ray_cluster, "outage").target >= 2, 30), "no scale-up after the outage"
        load.value(90)
    finally:
        ctl.finish()
    recs = read_jsonl(log)
    causes = {e["cause"] for r in recs for e in r.get("errors") or []}
    assert "dashboard" in causes
    assert any("unreachable" in (r.get("reason") or "") for r in recs)


def test_refuses_an_app_not_under_external_scaling(ray_cluster: LocalRay) -> None:
    deploy(ray_cluster, "builtin", mode="ray")
    args = ("control", "--serve-address", ray_cluster.dashboard_url, "--app", "builtin", "--metrics-port", "0",
            "--duration", "1", "--prometheus-url", ray_cluster.metrics_url)
    assert run_cli(*args) == 2
    # Long enough to see the app on a loaded machine: a run that never saw it exits 1.
    assert run_cli(*args, "--dry-run", "--interval", "1", "--duration", "4") == 0


def test_policy_inside_serve_autoscaler(ray_cluster: LocalRay) -> None:
    """The in-Serve adapter: Serve's own autoscaler runs autotune's hpa policy (no controller process)."""
    deploy(ray_cluster, "inserve", mode="ray-policy")
    load = Background(replay, ray_cluster.http_url, constant_load(30.0, 25.0))
    try:
        assert wait_for(lambda: pool(ray_cluster, "inserve").target >= 3, 40), "in-Serve policy did not scale up"
    finally:
        load.value(120)


def _scenario_copy(tmp_path: Path, name: str, **pool: Any) -> Path:
    data = yaml.safe_load(Path(load_scenario("live-demo").source).read_text())
    data["name"] = name
    data["pools"][0].update(pool)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_no_runaway_scale_up_when_replicas_cannot_be_placed(ray_cluster: LocalRay, tmp_path: Path) -> None:
    """40 replicas asked for, 8 GPUs in the cluster: once a replica has waited for a node past its pool's
    start-up and the placement grace, the controller adds no more; before that, pending ones do not block."""
    path = _scenario_copy(tmp_path, "scarce", max_replicas=40)
    deploy(ray_cluster, "scarce", str(path))
    _pids_seen(ray_cluster.http_url, 4)
    log = tmp_path / "d.jsonl"
    ctl = Running(ray_cluster, "--app", "scarce", "--scenario", str(path), "--policy", "static:40", "--interval", "2",
                  "--log", str(log), "--metrics-port", "0", "--max-step-up", "2", "--max-step-up-ratio", "0",
                  "--placement-grace", "2")
    try:
        assert wait_for(lambda: pool(ray_cluster, "scarce").pending > 0, 40), "no replica left pending"
        assert wait_for(lambda: any("unplaceable" in n for r in read_jsonl(log) for n in r.get("guards") or []), 40)
        assert wait_for(lambda: len(read_jsonl(log)) >= 20, 40)
    finally:
        ctl.finish()
        ray_cluster.delete_apps()  # free the GPUs for the next test
    recs = [r for r in read_jsonl(log) if r["event"] == "decision"]
    pending = [k for k, r in enumerate(recs) if r["observation"]["pools"]["l4"]["pending"] > 0]
    stuck = next(k for k, r in enumerate(recs) if any("unplaceable" in n for n in r["guards"]))
    # Replicas waiting for a node within the grace did not stop the scale-up they belong to ...
    assert recs[pending[0]]["applied"]["replicas"]["l4"] > recs[pending[0]]["observation"]["pools"]["l4"]["running"]
    # ... one that no node took did: no decision that saw one grew the target.
    assert recs[stuck]["observation"]["pools"]["l4"]["unplaceable"] > 0
    for before, r in zip(recs, recs[1:]):
        if r["observation"]["pools"]["l4"]["unplaceable"]:
            assert r["applied"]["replicas"]["l4"] <= before["applied"]["replicas"]["l4"]
    assert max(r["applied"]["replicas"]["l4"] for r in recs) <= 20  # 8 GPUs: far from the 40 asked for


def test_notices_a_replica_dying(ray_cluster: LocalRay, tmp_path: Path) -> None:
    import os
    import signal

    deploy(ray_cluster, "dying")
    _pids_seen(ray_cluster.http_url, 4)
    victim = pool(ray_cluster, "dying").pids[0]
    log = tmp_path / "d.jsonl"
    ctl = Running(ray_cluster, "--app", "dying", "--policy", "hpa", "--interval", "2", "--log", str(log),
                  "--metrics-port", "0")
    try:
        assert wait_for(lambda: len(read_jsonl(log)) >= 1, 20)
        os.kill(victim, signal.SIGKILL)  # a replica process of the cluster this test started
        assert wait_for(lambda: any("died" in n for r in read_jsonl(log) for n in r.get("guards") or []), 40)
        assert wait_for(lambda: pool(ray_cluster, "dying").running == 1, 40)  # Serve replaced it
    finally:
        ctl.finish()
    recs = [r for r in read_jsonl(log) if r["event"] == "decision"]
    assert sum(r["observation"]["pools"]["l4"]["preemptions"] for r in recs) >= 1
    assert all(r["applied"]["replicas"]["l4"] <= 2 for r in recs), "a death must not trigger a scale-up spree"


def test_router_spreads_over_pools_and_controller_empties_a_pool(ray_cluster: LocalRay, tmp_path: Path) -> None:
    """The four-pool ``mixed`` app: requests reach every pool; ``static`` takes the t4/a100 pools to 0."""
    ray_cluster.deploy(render(load_scenario("mixed"), app_name="mixed", time_factor=MIXED_TIME_FACTOR))
    # Free capacity = replicas x max_ongoing_requests (a100 64, the others 32) - in flight:
    # 72 at once fill the a100 to 32 in flight, then spread over all four.
    _pools_seen(ray_cluster.http_url, 4)  # the router has learnt the replica counts
    seen = _pools_seen(ray_cluster.http_url, 72)
    assert set(seen) == {"l4-spot", "l4", "t4", "a100"} and seen["a100"] >= max(seen.values()) - 1
    log = tmp_path / "d.jsonl"
    ctl = Running(ray_cluster, "--app", "mixed", "--scenario", "mixed", "--policy", "static", "--interval", "2",
                  "--log", str(log), "--metrics-port", "0", "--max-step-down", "4", "--down-cooldown", "0")
    try:
        assert wait_for(lambda: pool(ray_cluster, "mixed", "t4").target == 0
                        and pool(ray_cluster, "mixed", "a100").target == 0, 30)
    finally:
        ctl.finish()
    assert wait_for(lambda: pool(ray_cluster, "mixed", "a100").running == 0, 30)
    assert set(_pools_seen(ray_cluster.http_url, 24)) <= {"l4-spot", "l4"}


def _pools_seen(url: str, n: int) -> dict[str, int]:
    import asyncio
    from collections import Counter

    async def go() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=60) as c:
            rs = await asyncio.gather(*(c.post(url, json={}) for _ in range(n)))
        return [r.json() for r in rs]

    return dict(Counter(r["pool"] for r in asyncio.run(go())))
