"""The shipped real model (a scikit-learn digit classifier on CPU) served by Ray Serve and driven by autotune."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from autotune.live.digits_model import DigitsClassifier
from autotune.live.localray import LocalRay
from tests.live.conftest import read_jsonl, run_cli, wait_for
from tests.live.test_real_cluster import pool

pytestmark = pytest.mark.integration  # every test here runs against a real Ray cluster

CONFIG = Path(__file__).resolve().parents[2] / "serve_configs" / "real-model.yaml"


def test_the_model_alone_classifies_what_it_was_fitted_on() -> None:
    from sklearn.datasets import load_digits

    m = DigitsClassifier()
    data = load_digits()
    got = m.predict([{"pixels": data.data[i].tolist()} for i in range(0, 1797, 97)])
    assert [g["digit"] for g in got] == [int(data.target[i]) for i in range(0, 1797, 97)]
    with pytest.raises(ValueError, match="pixels: expected 64 finite numbers"):
        m.predict([{"pixels": [1.0, 2.0]}])


def test_real_model_served_and_scaled(ray_cluster: LocalRay, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    app = yaml.safe_load(CONFIG.read_text())["applications"][0]
    ray_cluster.deploy(app)
    data = load_digits()
    for i in (5, 42, 1000):
        r = httpx.post(ray_cluster.http_url, json={"pixels": data.data[i].tolist()}, timeout=30)
        assert r.status_code == 200 and r.json()["output"]["digit"] == int(data.target[i]), r.text
    assert httpx.post(ray_cluster.http_url, json={}, timeout=30).json()["output"]["digit"] == int(data.target[0])
    log = tmp_path / "d.jsonl"
    assert run_cli("control", "--serve-address", ray_cluster.dashboard_url, "--app", app["name"],
                   "--scenario", "digits-cpu", "--prometheus-url", ray_cluster.metrics_url, "--metrics-port", "0",
                   "--policy", "static:2", "--interval", "1", "--duration", "4", "--log", str(log)) == 0
    assert any(r.get("actions") for r in read_jsonl(log))
    assert wait_for(lambda: pool(ray_cluster, app["name"]).running == 2, 60), "the second replica did not start"
