"""Serve's metrics as a Prometheus range query would return them, for a pool whose batch time is known."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from autotune.calibrate import measure
from autotune.live import observe

SIZE_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128)  # Ray Serve 2.60's DEFAULT_BATCH_SIZE_BUCKETS


def matrix(app: str, pool: str, fixed_ms: float, per_item_ms: float, sigma: float, steps: int = 40,
           step_s: float = 10.0, start: float = 1_000_000.0, replicas: int = 2, seed: int = 0,
           max_batch: int = 8) -> dict[str, Any]:
    """A ``query_range`` answer: cumulative batch histograms per replica, start-ups and router requests."""
    rng = np.random.default_rng(seed)
    rows: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}

    def put(name: str, labels: dict[str, str], t: float, v: float) -> None:
        key = tuple(sorted({"__name__": name, "job": "ray", "instance": "x:1", **labels}.items()))
        rows.setdefault(key, []).append([t, str(v)])

    for r in range(replicas):
        lab = {"application": app, "deployment": pool, "replica": f"{pool}#{r}", "function_name": "infer"}
        n_tot = items_tot = ms_tot = 0.0
        bins = np.zeros(len(SIZE_BOUNDS))
        for k in range(steps + 1):
            if k:  # the load, and so the batch sizes, vary from window to window
                n = int(rng.integers(10, 30))
                sizes = np.clip(rng.poisson(1 + k % max_batch, n), 1, max_batch)
                ms = (fixed_ms + sizes * per_item_ms) * np.exp(rng.normal(-sigma**2 / 2, sigma, n))
                n_tot, items_tot, ms_tot = n_tot + n, items_tot + sizes.sum(), ms_tot + ms.sum()
                bins += np.array([np.sum(sizes <= b) for b in SIZE_BOUNDS])
            t = start + k * step_s
            put(f"{measure.BATCH_EXEC}_count", lab, t, n_tot)
            put(f"{measure.BATCH_EXEC}_sum", lab, t, ms_tot)
            put(f"{measure.BATCH_SIZE}_count", lab, t, n_tot)
            put(f"{measure.BATCH_SIZE}_sum", lab, t, items_tot)
            for b, c in zip(SIZE_BOUNDS, bins):
                put(f"{measure.BATCH_SIZE}_bucket", {**lab, "le": f"{b:.1f}"}, t, c)
            put(f"{measure.BATCH_SIZE}_bucket", {**lab, "le": "+Inf"}, t, n_tot)
    dep = {"application": app, "deployment": pool}
    router = {"application": app, "deployment": "router", "route": "/"}
    total = 0.0
    for k in range(steps + 1):
        t = start + k * step_s
        total += float(rng.poisson(50.0)) if k else 0.0
        put(observe.ROUTER_REQUESTS, router, t, total)
        put(f"{measure.STARTUP}_count", dep, t, 0.0 if k < 3 else 2.0)  # two replicas start in the span
        put(f"{measure.STARTUP}_sum", dep, t, 0.0 if k < 3 else 2 * 2500.0)
    result = [{"metric": dict(key), "values": vals} for key, vals in rows.items()]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


@contextmanager
def fake_prometheus(body: dict[str, Any]) -> Iterator[str]:
    """An HTTP server answering every query with ``body`` (the range query's answer); yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
