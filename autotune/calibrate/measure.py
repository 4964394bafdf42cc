"""Samples of Serve's metrics over a span → what the fits take, per pool and per window. Pure.

A sample is what one scrape of the metrics endpoint(s) read (live, or rebuilt from a Prometheus server at
that time): counters and histograms are differenced between successive samples, per replica, so a
replica that starts within the span counts from zero and one that stops leaves its windows out rather
than reading as a counter reset of the whole pool.

Metric names are Ray Serve 2.60's as Ray's Prometheus endpoint exports them (``ray_`` prefix): the batch
histograms of ``ray/serve/batching.py`` (labels application, deployment, replica, function_name) and the
controller's start-up histogram of ``ray/serve/_private/deployment_state.py`` (application, deployment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from autotune.calibrate.fit import BatchWindow
from autotune.live import observe
from autotune.live import promtext as pt
from autotune.live.observe import Sample

BATCH_EXEC = "ray_serve_batch_execution_time_ms"
BATCH_SIZE = "ray_serve_actual_batch_size"
STARTUP = "ray_serve_replica_startup_latency_ms"
# Every series calibration reads (histograms as the parts it uses).
METRICS = (f"{BATCH_EXEC}_sum", f"{BATCH_EXEC}_count", f"{BATCH_SIZE}_sum", f"{BATCH_SIZE}_count",
           f"{BATCH_SIZE}_bucket", f"{STARTUP}_sum", f"{STARTUP}_count", observe.ROUTER_REQUESTS,
           observe.HTTP_REQUESTS, *(f"{observe.HTTP_LATENCY}_{s}" for s in ("bucket", "count", "sum")))


def replicas(samples: Sequence[Sample], app: str, deployment: str) -> list[str]:
    """Replica ids with a batch series for the pool anywhere in the samples."""
    seen: set[str] = set()
    for s in samples:
        for labels, _ in (s.scrape or {}).get(f"{BATCH_EXEC}_count", ()):
            d = dict(labels)
            if d.get("application") == app and d.get("deployment") == deployment and "replica" in d:
                seen.add(d["replica"])
    return sorted(seen)


def _delta(a: pt.Scrape, b: pt.Scrape, name: str, m: dict[str, str]) -> float:
    return pt.counter_delta(pt.total(a, name, m) if pt.has(a, name, m) else 0.0, pt.total(b, name, m))


def _pairs(samples: Sequence[Sample]) -> list[tuple[pt.Scrape, pt.Scrape]]:
    ok = [s.scrape for s in samples if s.scrape is not None]
    return list(zip(ok, ok[1:]))


def batch_windows(samples: Sequence[Sample], app: str, deployment: str) -> list[BatchWindow]:
    """One window per replica and pair of successive samples in which the replica's series exist at the end."""
    out = []
    for rep in replicas(samples, app, deployment):
        m = {"application": app, "deployment": deployment, "replica": rep}
        for a, b in _pairs(samples):
            if not (pt.has(b, f"{BATCH_EXEC}_count", m) and pt.has(b, f"{BATCH_SIZE}_count", m)):
                continue
            w = BatchWindow(batches=_delta(a, b, f"{BATCH_EXEC}_count", m), items=_delta(a, b, f"{BATCH_SIZE}_sum", m),
                            sized=_delta(a, b, f"{BATCH_SIZE}_count", m), exec_ms=_delta(a, b, f"{BATCH_EXEC}_sum", m))
            if w.batches > 0 or w.sized > 0:
                out.append(w)
    return out


def size_bins(samples: Sequence[Sample], app: str, deployment: str) -> list[float]:
    """Batches formed per batch-size bucket (non-cumulative, smallest first) over the span, all replicas."""
    by_le: dict[float, float] = {}
    for rep in replicas(samples, app, deployment):
        m = {"application": app, "deployment": deployment, "replica": rep}
        for a, b in _pairs(samples):
            if not pt.has(b, f"{BATCH_SIZE}_bucket", m):
                continue
            before = pt.histogram(a, BATCH_SIZE, m) if pt.has(a, f"{BATCH_SIZE}_bucket", m) \
                else pt.Histogram((), 0.0, 0.0)
            for le, c in pt.histogram_delta(before, pt.histogram(b, BATCH_SIZE, m)).buckets:
                by_le[le] = by_le.get(le, 0.0) + c
    cum = [c for _, c in sorted(by_le.items())]
    return [c - p for c, p in zip(cum, [0.0, *cum[:-1]])]


def startups(samples: Sequence[Sample], app: str, deployment: str) -> tuple[float, float]:
    """(replica starts, their summed start-up ms) over the span, from the controller's start-up histogram."""
    ok = [s.scrape for s in samples if s.scrape is not None]
    if not ok:
        return 0.0, 0.0
    m = {"application": app, "deployment": deployment}
    return _delta(ok[0], ok[-1], f"{STARTUP}_count", m), _delta(ok[0], ok[-1], f"{STARTUP}_sum", m)


def arrival_counts(samples: Sequence[Sample], app: str) -> tuple[list[float], float]:
    """(requests per slot between successive samples, the slot length): the app's arrivals at its ingress."""
    ok = [s for s in samples if s.scrape is not None]
    counts = [float(observe.window_counts(a.scrape, b.scrape, app)[0]) for a, b in zip(ok, ok[1:])
              if a.scrape is not None and b.scrape is not None]
    slot = (ok[-1].t - ok[0].t) / (len(ok) - 1) if len(ok) > 1 else math.nan
    return counts, slot


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    requests: int


def latency(samples: Sequence[Sample], app: str) -> Latency:
    """The app's HTTP latency of OK requests over the span (histogram quantiles, as Prometheus computes them)."""
    ok = [s.scrape for s in samples if s.scrape is not None]
    if len(ok) < 2:
        return Latency(math.nan, math.nan, 0)
    h = observe.latency_window(ok[0], ok[-1], app)
    return Latency(pt.quantile(h, 0.5), pt.quantile(h, 0.99), int(round(h.count)))
