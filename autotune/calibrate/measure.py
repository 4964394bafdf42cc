"""Samples of Serve's metrics over a span → what the fits take, per pool and per window. Pure.

A sample is what one scrape of the metrics endpoint(s) read (live, or rebuilt from a Prometheus server at
that time): histograms' bucket counts are differenced between samples, per replica, so a replica that
starts within the span counts from zero and one that stops leaves its windows out rather than reading as a
counter reset of the whole pool. Only bucket counts are used: Ray records every histogram observation at
its bucket's midpoint, so a ``_sum`` is no finer than the buckets.

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
BATCH_UTIL = "ray_serve_batch_utilization_percent"  # size / max_batch_size x 100: tells 3 from 4 in bucket (2, 4]
STARTUP = "ray_serve_replica_startup_latency_ms"
# Every series calibration reads (histograms as the parts it uses).
METRICS = (f"{BATCH_EXEC}_count", f"{BATCH_EXEC}_bucket", f"{BATCH_SIZE}_count", f"{BATCH_SIZE}_bucket",
           f"{BATCH_UTIL}_bucket", f"{STARTUP}_bucket", f"{STARTUP}_count", observe.ROUTER_REQUESTS,
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


@dataclass(frozen=True)
class _Row:
    """A replica's cumulative batch histograms at one sample (buckets: upper bound -> cumulative count)."""

    ended: float  # batches whose time is recorded
    started: float  # batches whose size is recorded
    times: dict[float, float]
    sizes: dict[float, float]
    utils: dict[float, float]


_ZERO = _Row(0.0, 0.0, {}, {}, {})


def _buckets(scrape: pt.Scrape, name: str, m: dict[str, str]) -> dict[float, float]:
    return dict(pt.histogram(scrape, name, m).buckets)


def _rows(samples: Sequence[Sample], m: dict[str, str]) -> list[_Row]:
    """The replica's rows while it lives: zeros before its series appear; cut where they disappear or reset."""
    out: list[_Row] = []
    for s in samples:
        if s.scrape is None:
            continue
        if not pt.has(s.scrape, f"{BATCH_EXEC}_count", m):
            if out and out[-1].ended > 0:
                break
            out.append(_ZERO)
            continue
        row = _Row(pt.total(s.scrape, f"{BATCH_EXEC}_count", m), pt.total(s.scrape, f"{BATCH_SIZE}_count", m),
                   _buckets(s.scrape, BATCH_EXEC, m), _buckets(s.scrape, BATCH_SIZE, m),
                   _buckets(s.scrape, BATCH_UTIL, m))
        if out and (row.ended < out[-1].ended or row.started < out[-1].started):
            break
        out.append(row)
    return out


def _bins(after: dict[float, float], before: dict[float, float]) -> list[tuple[float, float]]:
    """Non-cumulative (upper bound, count) of the increase from ``before`` to ``after``, ascending."""
    cum = [(le, max(0.0, c - before.get(le, 0.0))) for le, c in sorted(after.items())]
    return [(le, c - p) for (le, c), p in zip(cum, [0.0, *(c for _, c in cum[:-1])])]


def batch_sizes(size_bins: Sequence[tuple[float, float]], util_bins: Sequence[tuple[float, float]],
                max_batch: int) -> tuple[float, ...]:
    """Batches of size 1, 2, ... from the size histogram's bins (1, 2, 4, 8, ... in Serve 2.60) and, where it
    tells the sizes within a bin apart at ``max_batch``, the utilization histogram's; else spread evenly."""
    lows = [0.0, *(le for le, _ in size_bins[:-1])]
    top = max((le for (le, c), lo in zip(size_bins, lows) if c > 0.5 and not math.isinf(le)), default=1.0)
    cap = int(max_batch if all(c < 0.5 for (le, c) in size_bins if le > max_batch) else top)
    even = [0.0] * cap
    for (le, c), lo in zip(size_bins, lows):
        ints = [k for k in range(int(math.floor(lo)) + 1, int(min(le, cap)) + 1)]
        for k in ints:
            even[k - 1] += c / len(ints)
    if not util_bins or cap != max_batch:
        return tuple(even)
    ulows = [0.0, *(le for le, _ in util_bins[:-1])]
    where = [next((i for i, ((le, _), lo) in enumerate(zip(util_bins, ulows)) if lo < 100.0 * k / cap <= le), -1)
             for k in range(1, cap + 1)]
    counts = [util_bins[i][1] if i >= 0 else math.nan for i in where]
    unmapped = sum(c for i, (_, c) in enumerate(util_bins) if i not in where)
    if len(set(where)) < cap or -1 in where or unmapped > 0.5:
        return tuple(even)
    # Agrees with the size histogram bin by bin, or it is not the max_batch_size that was in force.
    for (le, c), lo in zip(size_bins, lows):
        if abs(sum(counts[k - 1] for k in range(1, cap + 1) if lo < k <= le) - c) > 0.5:
            return tuple(even)
    return tuple(counts)


def batch_windows(samples: Sequence[Sample], app: str, deployment: str, max_batch: int) -> list[BatchWindow]:
    """Each replica's batches between the samples at which it had no batch running.

    Serve observes a batch's size as it starts and its time as it ends, so a window cut while a batch runs
    holds the size of one batch and the time of another. Where the two counts agree no batch was running,
    and a window from one such sample to the next holds the same batches in both; a replica that is never
    idle gives one long window (its edges cut a batch or two among many).
    """
    out = []
    for rep in replicas(samples, app, deployment):
        rows = _rows(samples, {"application": app, "deployment": deployment, "replica": rep})
        cuts = [0, *(i for i, r in enumerate(rows) if i and abs(r.ended - r.started) < 0.5)]
        if rows and cuts[-1] != len(rows) - 1:
            cuts.append(len(rows) - 1)
        for i, j in zip(cuts, cuts[1:]):
            a, b = rows[i], rows[j]
            if b.ended - a.ended < 0.5 or b.started - a.started < 0.5:
                continue
            sizes = batch_sizes(_bins(b.sizes, a.sizes), _bins(b.utils, a.utils), max_batch)
            out.append(BatchWindow(sizes, tuple(_bins(b.times, a.times))))
    return out


def startups(samples: Sequence[Sample], app: str, deployment: str) -> list[tuple[float, float]]:
    """The controller's start-up histogram over the span: cumulative (upper bound ms, replicas started)."""
    ok = [s.scrape for s in samples if s.scrape is not None]
    if not ok:
        return []
    m = {"application": app, "deployment": deployment}
    before = pt.histogram(ok[0], STARTUP, m) if pt.has(ok[0], f"{STARTUP}_bucket", m) else pt.Histogram((), 0, 0)
    return list(pt.histogram_delta(before, pt.histogram(ok[-1], STARTUP, m)).buckets)


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
