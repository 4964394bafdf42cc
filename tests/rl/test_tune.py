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
