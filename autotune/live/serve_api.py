"""The Ray dashboard's Serve REST API and the Prometheus endpoints, as the controller uses them."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from autotune.live import promtext as pt
from autotune.live.http import RetryingClient
from autotune.live.serve_state import AppState, app_state


class ServeAPI:
    def __init__(self, address: str, client: RetryingClient) -> None:
        self.address = address.rstrip("/")
        self.http = client

    def details(self) -> dict[str, Any]:
        return self.http.get_json(f"{self.address}/api/serve/applications/")

    def app(self, name: str) -> AppState | None:
        return app_state(self.details(), name)

    def scale(self, app: str, deployment: str, replicas: int) -> None:
        """Serve's external scaler API (the app must be deployed with ``external_scaler_enabled``)."""
        url = f"{self.address}/api/v1/applications/{app}/deployments/{deployment}/scale"
        self.http.request("POST", url, json={"target_num_replicas": int(replicas)})

    def update_deployments(self, app: str, changes: Mapping[str, Mapping[str, Any]]) -> None:
        """Declarative update of some deployments' fields (``user_config``, ``num_replicas``,
        ``max_queued_requests``).

        ``PUT /api/serve/applications/`` replaces every application, so the
        others are sent back as deployed. All three are lightweight updates:
        Serve calls ``reconfigure`` in place for ``user_config``, and pushes a
        new ``max_queued_requests`` to the deployment's handles; no replica restarts.
        """
        details = self.details()
        apps = details.get("applications") or {}
        configs = []
        for name, a in apps.items():
            cfg = copy.deepcopy(a.get("deployed_app_config"))
            if cfg is None:
                continue
            if name == app:
                by_name = {d["name"]: d for d in cfg.get("deployments", [])}
                for dep, fields in changes.items():
                    by_name.setdefault(dep, {"name": dep}).update(fields)
                cfg["deployments"] = list(by_name.values())
            configs.append(cfg)
        body: dict[str, Any] = {"applications": configs}
        if details.get("http_options"):
            body["http_options"] = {k: details["http_options"][k] for k in ("host", "port")
                                    if k in details["http_options"]}
        if details.get("proxy_location"):
            body["proxy_location"] = details["proxy_location"]
        self.http.request("PUT", f"{self.address}/api/serve/applications/", json=body)

    def deploy(self, config: Mapping[str, Any]) -> None:
        self.http.request("PUT", f"{self.address}/api/serve/applications/", json=dict(config))


def scrape_all(client: RetryingClient, urls: Sequence[str]) -> pt.Scrape:
    """Every node's endpoint, merged (raises Unreachable if any is down: a partial sum would mislead)."""
    return pt.merge(pt.parse_prometheus(client.get_text(u)) for u in urls)
