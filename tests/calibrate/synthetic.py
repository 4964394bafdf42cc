"""Serve's metrics as a Prometheus range query would return them, for a pool whose batch time is known."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from autotune.calibrate import measure
from autotune.live import observe
from tests.http_json import send_json

# Ray Serve 2.60's bucket bounds (ray/serve/_private/constants.py).
SIZE_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128)
UTIL_BOUNDS = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100)
# What RAY_SERVE_REQUEST_LATENCY_BUCKETS_MS can set instead, as docs/calibrate.md advises: 10 ms apart.
FINE_BOUNDS = tuple(float(b) for b in range(10, 2001, 10))
TIME_BOUNDS = (1, 2, 5, 10, 20, 50, 100, 200, 300, 400, 500, 1000, 2000, 5000, 10000, 60000, 120000, 300000, 600000)


def _cum(values: np.ndarray, bounds: tuple[float, ...]) -> np.ndarray:
    return np.array([np.sum(values <= b) for b in bounds], dtype=float)


def matrix(app: str, pool: str, fixed_ms: float, per_item_ms: float, sigma: float, steps: int = 40,
           step_s: float = 10.0, start: float = 1_000_000.0, replicas: int = 2, seed: int = 0,
           max_batch: int = 4, time_bounds: tuple[float, ...] = TIME_BOUNDS) -> dict[str, Any]:
    """A ``query_range`` answer: cumulative batch histograms per replica, start-ups and router requests."""
    rng = np.random.default_rng(seed)
    rows: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}

    def put(name: str, labels: dict[str, str], t: float, v: float) -> None:
        key = tuple(sorted({"__name__": name, "job": "ray", "instance": "x:1", **labels}.items()))
        rows.setdefault(key, []).append([t, str(v)])

    for r in range(replicas):
        lab = {"application": app, "deployment": pool, "replica": f"{pool}#{r}", "function_name": "infer"}
        n_tot = 0.0
        sizes_cum, util_cum, time_cum = (np.zeros(len(b)) for b in (SIZE_BOUNDS, UTIL_BOUNDS, time_bounds))
        for k in range(steps + 1):
            if k:  # the load, and so the batch sizes, vary from window to window
                n = int(rng.integers(10, 30))
                sizes = np.clip(rng.poisson(0.5 + k % max_batch, n), 1, max_batch)
                ms = (fixed_ms + sizes * per_item_ms) * np.exp(rng.normal(-sigma**2 / 2, sigma, n))
                n_tot += n
                sizes_cum += _cum(sizes, SIZE_BOUNDS)
                util_cum += _cum(100.0 * sizes / max_batch, UTIL_BOUNDS)
                time_cum += _cum(ms, time_bounds)
            t = start + k * step_s
            put(f"{measure.BATCH_EXEC}_count", lab, t, n_tot)
            put(f"{measure.BATCH_SIZE}_count", lab, t, n_tot)
            for name, bounds, cum in ((measure.BATCH_SIZE, SIZE_BOUNDS, sizes_cum),
                                      (measure.BATCH_UTIL, UTIL_BOUNDS, util_cum),
                                      (measure.BATCH_EXEC, time_bounds, time_cum)):
                for bound, c in zip(bounds, cum):
                    put(f"{name}_bucket", {**lab, "le": f"{float(bound)}"}, t, c)
                put(f"{name}_bucket", {**lab, "le": "+Inf"}, t, n_tot)
    dep = {"application": app, "deployment": pool}
    router = {"application": app, "deployment": "router", "route": "/"}
    total = 0.0
    for k in range(steps + 1):
        t = start + k * step_s
        total += float(rng.poisson(50.0)) if k else 0.0
        put(observe.ROUTER_REQUESTS, router, t, total)
        started = 0.0 if k < 3 else 2.0  # two replicas start in the span, both between 2 and 5 s
        put(f"{measure.STARTUP}_count", dep, t, started)
        for bound in (1000, 2000):
            put(f"{measure.STARTUP}_bucket", {**dep, "le": f"{float(bound)}"}, t, 0.0)
        for le in ("5000.0", "+Inf"):
            put(f"{measure.STARTUP}_bucket", {**dep, "le": le}, t, started)
    result = [{"metric": dict(key), "values": vals} for key, vals in rows.items()]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


@contextmanager
def fake_prometheus(body: dict[str, Any]) -> Iterator[str]:
    """An HTTP server answering every query with ``body`` (the range query's answer); yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            send_json(self, 200, body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
