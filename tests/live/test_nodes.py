"""Metrics endpoints from the dashboard's node summary (its shape as Ray 2.60's dashboard answers)."""

from __future__ import annotations

from typing import Any

import pytest

from autotune.live.http import Unreachable
from autotune.live.nodes import DiscoveredEndpoints, NoNodes, metrics_urls


def _node(ip: str, port: int | None, state: str = "ALIVE") -> dict[str, Any]:
    raylet = {"nodeManagerAddress": ip, "nodeManagerPort": 39635, "metricsAgentPort": 51153, "state": state}
    if port is not None:
        raylet["metricsExportPort"] = port
    return {"ip": ip, "hostname": f"host-{ip}", "raylet": raylet}


def _summary(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"result": True, "msg": "", "data": {"summary": list(nodes), "nodeLogicalResources": {}}}


def test_every_alive_node_with_a_metrics_port() -> None:
    body = _summary(_node("10.0.0.2", 8080), _node("10.0.0.3", 8080), _node("10.0.0.4", 8080, "DEAD"),
                    _node("10.0.0.5", None))
    assert metrics_urls(body, "d") == ["http://10.0.0.2:8080/metrics", "http://10.0.0.3:8080/metrics"]
    with pytest.raises(NoNodes, match="d: no alive node"):
        metrics_urls(_summary(_node("10.0.0.4", 8080, "DEAD")), "d")
    with pytest.raises(NoNodes):
        metrics_urls({"unexpected": 1}, "d")


class _Client:
    def __init__(self, answers: list[Any]) -> None:
        self.answers, self.urls = answers, []

    def get_json(self, url: str) -> Any:
        self.urls.append(url)
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a


def test_looked_up_again_after_the_refresh_and_the_last_list_kept_on_failure() -> None:
    now = [0.0]
    client = _Client([_summary(_node("10.0.0.2", 8080)), Unreachable("down"),
                      _summary(_node("10.0.0.2", 8080), _node("10.0.0.9", 8080))])
    found = DiscoveredEndpoints("http://head:8265/", client, ["http://head:8080/metrics"],  # type: ignore[arg-type]
                                refresh_s=30.0, clock=lambda: now[0])
    assert found() == ["http://10.0.0.2:8080/metrics"]
    assert client.urls == ["http://head:8265/nodes?view=summary"]
    now[0] = 10.0
    assert found() == ["http://10.0.0.2:8080/metrics"] and len(client.urls) == 1  # within the refresh: no lookup
    now[0] = 31.0
    assert found() == ["http://10.0.0.2:8080/metrics"]  # the lookup failed: the last list stays
    now[0] = 62.0
    assert found() == ["http://10.0.0.2:8080/metrics", "http://10.0.0.9:8080/metrics"]  # a node joined


def test_the_fallback_until_a_lookup_succeeds() -> None:
    found = DiscoveredEndpoints("http://head:8265", _Client([Unreachable("down")]),  # type: ignore[arg-type]
                                ["http://head:8080/metrics"], clock=lambda: 0.0)
    assert found() == ["http://head:8080/metrics"]
