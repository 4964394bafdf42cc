"""KubeRay actuator against a small in-process server speaking the Kubernetes REST protocol.

The server implements just what the official ``kubernetes`` client uses here:
GET and JSON-merge-PATCH of ``/apis/ray.io/v1/namespaces/{ns}/rayservices/{name}``,
``resourceVersion`` optimistic concurrency (409 on a stale version) and
``Status`` error bodies. No Kubernetes cluster is involved.
"""

from __future__ import annotations

import copy
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from autotune.core.types import Decision
from autotune.live.http import RequestRejected, Unreachable
from autotune.live.kuberay import KubeRayActuator
from autotune.live.serve_config import render
from autotune.live.serve_state import app_state
from autotune.scenario import load_scenario
from tests.http_json import send_json

PATH = "/apis/ray.io/v1/namespaces/ml/rayservices/vit"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class FakeKubeAPI:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.requests: list[tuple[str, str, str]] = []
        self.fail_next: int | None = None  # status for the next request
        self.conflict_next_patch = False
        api = self

        class H(http.server.BaseHTTPRequestHandler):
            def _send(self, code: int, body: dict[str, Any]) -> None:
                send_json(self, code, body)

            def _status(self, code: int, reason: str) -> None:
                self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                                  "code": code, "message": reason})

            def _pre(self) -> bool:
                api.requests.append((self.command, self.path, self.headers.get("Content-Type", "")))
                if api.fail_next is not None:
                    code, api.fail_next = api.fail_next, None
                    self._status(code, "InternalError")
                    return False
                if self.path.split("?")[0] != PATH:
                    self._status(404, "NotFound")
                    return False
                return True

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self._pre():
                    self._send(200, api.obj)

            def do_PATCH(self) -> None:  # noqa: N802
                if not self._pre():
                    return
                if self.headers.get("Content-Type") != "application/merge-patch+json":
                    self._status(415, "UnsupportedMediaType")
                    return
                patch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if api.conflict_next_patch:  # someone else edited it in between
                    api.conflict_next_patch = False
                    api.bump()
                if patch.get("metadata", {}).get("resourceVersion") != api.obj["metadata"]["resourceVersion"]:
                    self._status(409, "Conflict")
                    return
                api.obj = merge_patch(api.obj, patch)
                api.bump()
                self._send(200, api.obj)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bump(self) -> None:
        self.obj["metadata"]["resourceVersion"] = str(int(self.obj["metadata"]["resourceVersion"]) + 1)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.obj["spec"]["serveConfigV2"])


@pytest.fixture()
def kube() -> Iterator[FakeKubeAPI]:
    sc = load_scenario("live-demo")
    other = {"name": "other", "import_path": "x:y", "deployments": [{"name": "d", "num_replicas": 7}]}
    serve_cfg = {"applications": [render(sc, app_name="vit", time_factor=2), other]}
    obj = {"apiVersion": "ray.io/v1", "kind": "RayService",
           "metadata": {"name": "vit", "namespace": "ml", "resourceVersion": "100"},
           "spec": {"serveConfigV2": yaml.safe_dump(serve_cfg), "rayClusterConfig": {"headGroupSpec": {}}}}
    api = FakeKubeAPI(obj)
    yield api
    api.server.shutdown()


def _actuator(kube: FakeKubeAPI) -> KubeRayActuator:
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = kube.host
    return KubeRayActuator("ml", "vit", "vit", client.ApiClient(cfg))


def _state(target: int = 1, batch: int = 4):
    dep = {"target_num_replicas": target, "replicas": [],
           "deployment_config": {"user_config": {"max_batch_size": batch}}}
    return app_state({"applications": {"vit": {"deployments": {"l4": dep}}}}, "vit")


def test_patches_replicas_and_batch_size_into_serve_config(kube: FakeKubeAPI) -> None:
    acts = _actuator(kube).apply(Decision({"l4": 3}, "load", {"l4": 8}), _state())
    assert acts == ["rayservice ml/vit: scale l4: 1 -> 3", "rayservice ml/vit: batch l4: 4 -> 8"]
    apps = {a["name"]: a for a in kube.serve_config()["applications"]}
    l4 = next(d for d in apps["vit"]["deployments"] if d["name"] == "l4")
    assert l4["num_replicas"] == 3
    assert l4["user_config"] == {"max_batch_size": 8, "batch_wait_timeout_s": 0.1, "time_factor": 2.0}
    assert apps["other"]["deployments"] == [{"name": "d", "num_replicas": 7}]
    assert kube.obj["spec"]["rayClusterConfig"] == {"headGroupSpec": {}}  # merge patch kept the rest
    assert [(m, c) for m, _, c in kube.requests] == [("GET", ""), ("PATCH", "application/merge-patch+json")]


def test_patches_the_queue_cap_into_serve_config(kube: FakeKubeAPI) -> None:
    acts = _actuator(kube).apply(Decision({"l4": 1}, "shed", max_queued={"l4": 20}), _state())
    assert acts == ["rayservice ml/vit: max_queued l4: -1 -> 20"]
    apps = {a["name"]: a for a in kube.serve_config()["applications"]}
    l4 = next(d for d in apps["vit"]["deployments"] if d["name"] == "l4")
    assert l4["max_queued_requests"] == 20 and l4["user_config"]["max_batch_size"] == 4


def test_no_change_sends_nothing(kube: FakeKubeAPI) -> None:
    assert _actuator(kube).apply(Decision({"l4": 1}, "steady"), _state()) == []
    assert kube.requests == []


def test_a_concurrent_edit_is_retried_not_overwritten(kube: FakeKubeAPI) -> None:
    kube.conflict_next_patch = True
    _actuator(kube).apply(Decision({"l4": 2}, "load"), _state())
    assert [m for m, _, _ in kube.requests] == ["GET", "PATCH", "GET", "PATCH"]
    assert kube.obj["metadata"]["resourceVersion"] == "102"


def test_errors_map_to_retry_or_reject(kube: FakeKubeAPI) -> None:
    act = _actuator(kube)
    kube.fail_next = 500
    with pytest.raises(Unreachable):
        act.apply(Decision({"l4": 2}, "load"), _state())
    missing = KubeRayActuator("ml", "nope", "vit", act.api.api_client)
    with pytest.raises(RequestRejected) as e:
        missing.apply(Decision({"l4": 2}, "load"), _state())
    assert e.value.status == 404


def test_refuses_a_deployment_under_serves_autoscaler(kube: FakeKubeAPI) -> None:
    cfg = kube.serve_config()
    cfg["applications"][0]["deployments"][1]["autoscaling_config"] = {"min_replicas": 1}
    kube.obj["spec"]["serveConfigV2"] = yaml.safe_dump(cfg)
    before = copy.deepcopy(kube.obj)
    with pytest.raises(RequestRejected, match="autoscaler"):
        _actuator(kube).apply(Decision({"l4": 2}, "load"), _state())
    assert kube.obj == before
