"""Act through KubeRay: patch a RayService's ``serveConfigV2`` (replicas, ``user_config``, ``max_queued_requests``).

On Kubernetes the RayService is the source of truth: a replica count set
through Serve's API would be undone at KubeRay's next reconcile. So the
actuator edits the app's deployments inside ``spec.serveConfigV2`` (a YAML
string) and sends a JSON merge patch carrying the ``resourceVersion`` it
read, so a concurrent edit makes the API server answer 409 instead of being
overwritten; the actuator then re-reads and retries once.

Observation is unchanged: the Serve REST API and Prometheus endpoint of the
RayService's head (e.g. through its ``-head-svc`` Service).
"""

from __future__ import annotations

from typing import Any

import yaml

from autotune.core.types import Decision
from autotune.live.actuator import plan
from autotune.live.http import RequestRejected, Unreachable
from autotune.live.serve_state import AppState

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayservices"


def edit_serve_config(serve_config: str, app: str, replicas: dict[str, int],
                      batch_size: dict[str, int], max_queued: dict[str, int] | None = None) -> str:
    """``serveConfigV2`` with the app's deployments changed (pure)."""
    doc = yaml.safe_load(serve_config) or {}
    apps = doc.get("applications") or []
    target = next((a for a in apps if a.get("name") == app), None)
    if target is None:
        raise RequestRejected("serveConfigV2", 404, f"no application {app!r} in the RayService's serveConfigV2")
    deps = {d["name"]: d for d in target.setdefault("deployments", [])}

    def dep(name: str) -> dict[str, Any]:
        if name not in deps:  # a deployment left at its code defaults gets an entry
            deps[name] = {"name": name}
            target["deployments"].append(deps[name])
        return deps[name]

    for name, n in replicas.items():
        if "autoscaling_config" in dep(name):
            raise RequestRejected("serveConfigV2", 409, f"deployment {name!r} uses Serve's autoscaler")
        dep(name)["num_replicas"] = int(n)
    for name, b in batch_size.items():
        d = dep(name)
        d["user_config"] = {**(d.get("user_config") or {}), "max_batch_size": int(b)}
    for name, q in (max_queued or {}).items():
        dep(name)["max_queued_requests"] = int(q)
    return yaml.safe_dump(doc, sort_keys=False)


class KubeRayActuator:
    def __init__(self, namespace: str, name: str, app: str, api_client: Any | None = None) -> None:
        from kubernetes import client

        self.namespace, self.name, self.app = namespace, name, app
        self.api = client.CustomObjectsApi(api_client)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            if e.status is not None and 400 <= e.status < 500:
                raise RequestRejected(f"rayservices/{self.name}", e.status, str(e.body or e.reason)) from None
            raise Unreachable(f"Kubernetes API: {e.status} {e.reason}") from None
        except HTTPError as e:
            raise Unreachable(f"Kubernetes API: {e}") from None

    def get(self) -> dict[str, Any]:
        return self._call(self.api.get_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, self.name)

    def apply(self, decision: Decision, state: AppState) -> list[str]:
        p = plan(decision, state)
        if p.empty:
            return []
        replicas = {k: n for k, (_, n) in p.replicas.items()}
        batch = {k: b for k, (_, b) in p.batch_size.items()}
        queued = {k: q for k, (_, q) in p.max_queued.items()}
        for attempt in range(2):
            obj = self.get()
            new = edit_serve_config(obj["spec"].get("serveConfigV2", ""), self.app, replicas, batch, queued)
            body = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                    "spec": {"serveConfigV2": new}}
            try:
                self._call(self.api.patch_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                           self.name, body, _content_type="application/merge-patch+json")
                break
            except RequestRejected as e:
                if e.status != 409 or attempt:
                    raise
        return [f"rayservice {self.namespace}/{self.name}: {a}" for a in p.actions()]
