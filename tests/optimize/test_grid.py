"""The grid on Ray computes what it computes in this process, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from autotune.optimize import grid
from autotune.optimize.candidates import ray_candidate, spec_candidate
from autotune.optimize.split import split
from autotune.scenario import load_scenario
from autotune.workload.arrivals import Arrivals


def _tiny() -> tuple[str, list[grid.Task]]:
    sc = load_scenario("default")
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0.0, 1200.0, 24_000))
    sp = split(Arrivals(t, np.zeros(t.size, dtype=np.float32), 1200.0, "test"), 0.5, 300.0, 10.0, 290.0)
    cands = [spec_candidate("predictive", ""), spec_candidate("hpa", ""),
             ray_candidate("ray-tuned", {"target_ongoing_requests": 4.0}, "")]
    return sc.model_dump_json(), grid.tasks_for(sp.slices, cands, [0, 1])


def test_local_grid_is_deterministic() -> None:
    sc_json, tasks = _tiny()
    assert grid.run_local(sc_json, tasks[:2]) == grid.run_local(sc_json, tasks[:2])


@pytest.mark.integration
def test_ray_grid_equals_the_in_process_grid() -> None:
    ray = pytest.importorskip("ray")
    from autotune.rl.tune import _init_ray

    sc_json, tasks = _tiny()
    local = grid.run_local(sc_json, tasks)
    _init_ray(None, 2)
    try:
        seen: list[int] = []
        remote = grid.run_ray(sc_json, tasks, lambda done, total, row: seen.append(done))
    finally:
        ray.shutdown()
    assert remote == local  # floats compared exactly
    assert seen == list(range(1, len(tasks) + 1))
