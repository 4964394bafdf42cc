"""Shipped Serve configs: valid for Ray Serve's own schema, and in sync with their generator (fast)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

from autotune.live.serve_config import main, render
from autotune.scenario import load_scenario

CONFIGS = Path(__file__).resolve().parents[2] / "serve_configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_passes_serve_schema(path: Path) -> None:
    from ray.serve.schema import ServeDeploySchema

    cfg = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    app = cfg.applications[0]
    names = {d.name for d in app.deployments}
    sc = load_scenario(app.args["scenario"])
    assert names == {"router", *(p.name for p in sc.pools)}


@pytest.mark.parametrize("mode", ["external", "ray", "ray-policy"])
def test_generator_reproduces_the_live_demo_files(mode: str) -> None:
    buf = io.StringIO()
    with redirect_stdout(buf):
        main(["--scenario", "live-demo", "--mode", mode])
    assert yaml.safe_load(buf.getvalue()) == yaml.safe_load((CONFIGS / f"live-demo-{mode}.yaml").read_text())


def test_the_real_model_config_is_its_scenario_rendered_with_a_class_that_exists() -> None:
    import importlib

    buf = io.StringIO()
    with redirect_stdout(buf):
        main(["--scenario", "digits-cpu", "--backend", "autotune.live.digits_model:DigitsClassifier"])
    shipped = yaml.safe_load((CONFIGS / "real-model.yaml").read_text())
    assert yaml.safe_load(buf.getvalue()) == shipped
    module, _, cls = shipped["applications"][0]["args"]["backend"].partition(":")
    assert callable(getattr(importlib.import_module(module), cls)().predict)


def test_each_pool_gets_a_gpu_and_its_instance_resource() -> None:
    app = render(load_scenario("mixed"))
    pools = {d["name"]: d for d in app["deployments"] if d["name"] != "router"}
    assert pools["a100"]["ray_actor_options"] == {"num_cpus": 0, "num_gpus": 1, "resources": {"A100": 1}}
    assert pools["t4"]["user_config"]["max_batch_size"] == 4 and pools["l4-spot"]["num_replicas"] == 1


def test_queue_caps_are_rendered_per_deployment_and_left_out_when_unbounded() -> None:
    from tests.conftest import tweak

    sc = load_scenario("live-demo")
    assert all("max_queued_requests" not in d for d in render(sc)["deployments"])
    capped = tweak(sc, {"max_queued_requests": 12})
    deps = {d["name"]: d for d in render(capped)["deployments"]}
    assert deps["l4"]["max_queued_requests"] == 12 and "max_queued_requests" not in deps["router"]
    everywhere = {d["name"]: d for d in render(tweak(sc, max_queued_requests=5))["deployments"]}
    assert everywhere["l4"]["max_queued_requests"] == 5
