"""The Ray dashboard's Serve REST API and the Prometheus endpoints, as the controller uses them."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from autotune.live import promtext as pt
from autotune.live.http import RequestRejected, RetryingClient, Unreachable
from autotune.live.serve_state import AppState, app_state

SERVE_DETAILS = "/api/serve/applications/"


class NotServeAPI(RequestRejected):
    """The address answers, but not as a Ray dashboard's Serve REST API (say, Serve's HTTP proxy on 8000)."""

    def __init__(self, address: str, answer: str) -> None:
        self.address, self.status = address, 0
        Exception.__init__(self, f"{address} is not a Ray dashboard: GET {SERVE_DETAILS} {answer} (the dashboard "
                           "listens on port 8265 by default; port 8000 is Serve's HTTP proxy)")


class ServeAPI:
    def __init__(self, address: str, client: RetryingClient) -> None:
        self.address = address.rstrip("/")
        self.http = client

    def details(self) -> dict[str, Any]:
        """The dashboard's Serve details (NotServeAPI if the address is something else that answers)."""
        try:
            body = self.http.get_json(f"{self.address}{SERVE_DETAILS}")
        except RequestRejected as e:
            if e.status == 404:
                raise NotServeAPI(self.address, "answered HTTP 404") from None
            raise
        except Unreachable as e:
            if "not JSON" in str(e):
                raise NotServeAPI(self.address, "answered something other than JSON") from None
            raise
        # The dashboard always answers with these keys, whether or not Serve runs; an app routed at "/" behind
        # the proxy answers with its own JSON.
        if not isinstance(body, dict) or "applications" not in body:
            raise NotServeAPI(self.address, "answered JSON without \"applications\"")
        return body

    def app(self, name: str) -> AppState | None:
        return app_state(self.details(), name)

    def app_names(self) -> list[str]:
        return sorted((self.details().get("applications") or {}).keys())

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
