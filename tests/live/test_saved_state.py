"""``autotune control --state FILE``: a restarted controller resumes its policy's state (no Ray needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autotune.core import GuardConfig
from autotune.errors import InputError
from autotune.live.controller import Controller, ControllerConfig
from autotune.live.saved_state import MAX_AGE_S, load_state
from autotune.registry import make_policy
from autotune.scenario import load_scenario
from tests.live.test_controller_loop import APP, Cluster, FakeClock

POLICY = "predictive+crowd:3"


def _ctl(cluster: Cluster, clock: FakeClock, path: Path | None, resume: bool = False) -> tuple[Controller, list]:
    sc = load_scenario("live-demo")
    log: list[dict[str, Any]] = []
    policy = make_policy(POLICY, sc)
    resumed = load_state(path, policy.name, sc.name, clock())[0] if resume and path else None
    cfg = ControllerConfig(APP, interval_s=5.0, sample_s=1.0, guards=GuardConfig(down_cooldown_s=0.0))
    ctl = Controller(cfg, sc, policy, cluster.state, cluster.scrape, cluster, log.append, clock=clock,
                     sleep=clock.sleep, state_path=path, resumed=resumed)
    return ctl, log


def test_a_restarted_controller_decides_as_if_it_had_never_stopped(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    clock = FakeClock()
    cluster = Cluster(clock)
    cluster.rate = 12.0
    first, _ = _ctl(cluster, clock, path)
    first.run(duration_s=60.0)
    saved = json.loads(path.read_text())
    assert saved["policy"] == POLICY and saved["scenario"] == "live-demo" and saved["t"] == pytest.approx(60.0)
    assert saved["policy_state"] == json.loads(json.dumps(first.policy_state))
    again, log = _ctl(cluster, clock, path, resume=True)
    again.run(duration_s=5.0)
    resumed = [r for r in log if r["event"] == "decision"][0]

    # The same 65 s without a restart, on a cluster of its own.
    clock2 = FakeClock()
    cluster2 = Cluster(clock2)
    cluster2.rate = 12.0
    straight, log2 = _ctl(cluster2, clock2, None)
    straight.run(duration_s=65.0)
    last = [r for r in log2 if r["event"] == "decision"][-1]
    assert resumed["reason"] == last["reason"] and resumed["decision"] == last["decision"]
    assert len(again.policy_state["rates"]) == len(straight.policy_state["rates"]) == 13

    # Without the file the same restart starts cold: one window of history.
    fresh, _ = _ctl(cluster, clock, None)
    fresh.run(duration_s=5.0)
    assert len(fresh.policy_state["rates"]) == 1


def test_a_saved_state_is_resumed_only_if_it_fits(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert load_state(path, POLICY, "live-demo", 0.0)[0] is None  # none yet
    record = {"policy": POLICY, "scenario": "live-demo", "saved_at": 1000.0, "t": 50.0, "policy_state": {"a": 1}}
    path.write_text(json.dumps(record))
    saved, note = load_state(path, POLICY, "live-demo", 1010.0)
    assert saved is not None and saved.t == 50.0 and "10 s ago" in note
    stale, note = load_state(path, POLICY, "live-demo", 1000.0 + MAX_AGE_S + 1)
    assert stale is None and "starting fresh" in note
    bad = [("hpa", "live-demo", "policy"), (POLICY, "default", "scenario")]
    for policy, scenario, field in bad:
        with pytest.raises(InputError, match=field) as e:
            load_state(path, policy, scenario, 1010.0)
        assert str(path) in str(e.value) and "\n" not in str(e.value)
    for text, field in (("{not json", "not a saved policy state"), ("[1, 2]", "not a JSON object"),
                        (json.dumps({**record, "t": "soon"}), "t"),
                        (json.dumps({**record, "policy_state": [1]}), "policy_state")):
        path.write_text(text)
        with pytest.raises(InputError, match=field):
            load_state(path, POLICY, "live-demo", 1010.0)


def test_a_state_that_cannot_be_written_is_logged_and_the_loop_goes_on(tmp_path: Path) -> None:
    clock = FakeClock()
    cluster = Cluster(clock)
    ctl, log = _ctl(cluster, clock, tmp_path)  # a directory: the atomic rename over it fails
    ctl.run(duration_s=10.0)
    decs = [r for r in log if r["event"] == "decision"]
    assert len(decs) == 2 and all(r["errors"][0]["cause"] == "state" for r in decs)
    assert cluster.applied  # it still acted
