"""The Ray nodes' metrics endpoints, discovered from the dashboard (one per alive node).

The dashboard's node summary (``GET /nodes?view=summary``, what its Cluster page shows) gives each node's
address and ``metricsExportPort``; a cluster that gains or loses nodes is looked up again every
``refresh_s``. ``--prometheus-url`` overrides the discovery with a fixed list.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from autotune.live.http import RequestRejected, RetryingClient, Unreachable

NODES = "/nodes?view=summary"


class NoNodes(Exception):
    """The dashboard's node summary gave no alive node with a metrics port."""


def metrics_urls(summary: Any, source: str) -> list[str]:
    """``http://ADDRESS:PORT/metrics`` of every alive node in a node summary (NoNodes if none)."""
    nodes = ((summary or {}).get("data") or {}).get("summary") if isinstance(summary, dict) else None
    urls = []
    for n in nodes or []:
        raylet = n.get("raylet") or {}
        host, port = raylet.get("nodeManagerAddress") or n.get("ip"), raylet.get("metricsExportPort")
        if raylet.get("state", "ALIVE") == "ALIVE" and host and port:
            urls.append(f"http://{host}:{int(port)}/metrics")
    if not urls:
        raise NoNodes(f"{source}: no alive node with a metrics export port")
    return sorted(set(urls))


class DiscoveredEndpoints:
    """The nodes' metrics endpoints, looked up on the dashboard at most every ``refresh_s``.

    A failed lookup keeps the last list; before any succeeded, ``fallback`` is used.
    """

    def __init__(self, dashboard: str, client: RetryingClient, fallback: list[str], refresh_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = dashboard.rstrip("/") + NODES
        self.client, self.fallback, self.refresh_s = client, fallback, refresh_s
        self.clock = clock
        self.urls: list[str] | None = None
        self.looked_at: float | None = None

    def discover(self) -> list[str]:
        """Look the nodes up now (Unreachable, RequestRejected or NoNodes if that fails)."""
        self.looked_at = self.clock()
        self.urls = metrics_urls(self.client.get_json(self.url), self.url)
        return self.urls

    def __call__(self) -> list[str]:
        if self.looked_at is None or self.clock() - self.looked_at >= self.refresh_s:
            try:
                self.discover()
            except (Unreachable, RequestRejected, NoNodes):
                self.looked_at = self.clock()
        return self.urls or self.fallback
