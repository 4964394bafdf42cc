"""``autotune tune``'s Ray-baseline sweep on a private local Ray: the result loads and never loses to ray-default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotune.scenario import RayAutoscalerSpec, load_scenario


@pytest.mark.slow
def test_ray_baseline_sweep_writes_a_config_no_worse_than_ray_default(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from autotune.rl.tune import tune_ray_baseline

    out = tmp_path / "default-ray-tuned.json"
    try:
        data = tune_ray_baseline(load_scenario("default"), 2, out=out, concurrent=1, log=lambda s: None)
    finally:
        ray.shutdown()
    on_disk = json.loads(out.read_text())
    assert on_disk["ray_autoscaler"] == data["ray_autoscaler"]
    RayAutoscalerSpec(**on_disk["ray_autoscaler"])  # what `--policy ray-tuned` will parse
    # Ray's own defaults are always trial 0, so the winner scores at least as well.
    assert on_disk["score"] <= on_disk["ray_default_score"] + 1e-9


@pytest.mark.slow
def test_ppo_sweep_writes_the_best_learned_config(tmp_path: Path) -> None:
    """Two tiny trials: the sweep covers the sizing and prior strength, and scores only learned
    checkpoints (the step-0 prior is never reported, so it cannot win the sweep)."""
    ray = pytest.importorskip("ray")
    from autotune.rl.tune import tune_ppo

    out = tmp_path / "default-ppo-tune.json"
    try:
        data = tune_ppo(load_scenario("default"), 2, 2048, out=out, concurrent=1, log=lambda s: None)
    finally:
        ray.shutdown()
    on_disk = json.loads(out.read_text())
    assert on_disk["best_config"]["sizing"] in ("predictive", "crowd")
    assert on_disk["best_config"]["prior_logit"] in (0.5, 1.0, 2.5)
    scores = [t["score"] for t in on_disk["all"]]
    assert len(scores) == 2 and all(s is not None for s in scores)
    assert data["score"] <= min(scores) + 1e-9  # best over every learned checkpoint, "all" holds the last
