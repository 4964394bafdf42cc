"""Scrapes and Serve state → the :class:`Observation` the simulator builds.

Counters and histograms are differenced between the scrape that opened the
control window and the one that closes it; gauges (requests at replicas,
requests queued at handles) are averaged over every sample taken within the
window, since Serve exports them as instantaneous values. All pure.

Metric names are Ray Serve 2.60's as exported by Ray's Prometheus endpoint
(``ray_`` prefix): see ``ray/serve/_private/{router,replica,request_ingress_metrics}.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from autotune.core import burst
from autotune.core.types import Observation, PoolObs
from autotune.live import promtext as pt
from autotune.live.serve_state import AppState
from autotune.scenario import Scenario

ROUTER_REQUESTS = "ray_serve_num_router_requests_total"
HTTP_REQUESTS = "ray_serve_num_http_requests_total"
HTTP_LATENCY = "ray_serve_http_request_latency_ms"
ONGOING_AT_REPLICAS = "ray_serve_num_ongoing_requests_at_replicas"
QUEUED_AT_HANDLES = "ray_serve_deployment_queued_queries"
INGRESS = "router"
# HTTP codes of requests whose client gave up: Serve's request_timeout_s (408) and a disconnected client (499).
# Every other failure counts as dropped; a request rejected at a queue cap is a 503 (or 429 if so configured).
GAVE_UP_CODES = ("408", "499")


@dataclass(frozen=True)
class Sample:
    """One scrape of the metrics endpoint(s) at controller time ``t``; ``scrape`` None when it failed."""

    t: float
    scrape: pt.Scrape | None


def gauge_sum(scrape: pt.Scrape, name: str, app: str, deployment: str) -> float:
    return pt.total(scrape, name, {"application": app, "deployment": deployment})


def gauge_mean(samples: Sequence[Sample], name: str, app: str, deployment: str) -> float:
    """Mean over the window's successful samples of the gauge summed over handles (NaN if none)."""
    vals = [gauge_sum(s.scrape, name, app, deployment) for s in samples if s.scrape is not None]
    return sum(vals) / len(vals) if vals else math.nan


def app_seen(scrape: pt.Scrape | None, app: str) -> bool:
    """True when the app's request series exist (they appear with the first request)."""
    return scrape is not None and pt.has(scrape, ROUTER_REQUESTS, {"application": app})


def window_counts(before: pt.Scrape, after: pt.Scrape, app: str) -> tuple[int, int, int]:
    """(arrivals, completed OK, failed) between two scrapes."""
    m = {"application": app, "deployment": INGRESS}
    all_http = pt.counter_delta(pt.total(before, HTTP_REQUESTS, {"application": app}),
                                pt.total(after, HTTP_REQUESTS, {"application": app}))
    if pt.has(after, ROUTER_REQUESTS, m):
        # Counted when the proxy hands a request to the ingress: arrivals, not completions.
        arrivals = pt.counter_delta(pt.total(before, ROUTER_REQUESTS, m), pt.total(after, ROUTER_REQUESTS, m))
    else:  # an app whose ingress is not autotune's router: completions are the best proxy
        arrivals = all_http
    ok_m = {"application": app, "status_code": "200"}
    ok = pt.counter_delta(pt.total(before, HTTP_REQUESTS, ok_m), pt.total(after, HTTP_REQUESTS, ok_m))
    return round(arrivals), round(ok), round(max(0.0, all_http - ok))


def gave_up_count(before: pt.Scrape, after: pt.Scrape, app: str) -> int:
    """Requests between two scrapes whose client timed out or went away (a subset of the failed ones)."""
    n = 0.0
    for code in GAVE_UP_CODES:
        m = {"application": app, "status_code": code}
        n += pt.counter_delta(pt.total(before, HTTP_REQUESTS, m), pt.total(after, HTTP_REQUESTS, m))
    return round(n)


def latency_window(before: pt.Scrape, after: pt.Scrape, app: str) -> pt.Histogram:
    m = {"application": app, "status_code": "200"}
    return pt.histogram_delta(pt.histogram(before, HTTP_LATENCY, m), pt.histogram(after, HTTP_LATENCY, m))


def build_observation(sc: Scenario, app: str, state: AppState, window: Sequence[Sample], now: float,
                      window_s: float, preemptions: dict[str, int] | None = None,
                      unplaceable: dict[str, int] | None = None) -> Observation:
    """The observation at the end of a window; NaN rates/gauges when the metrics are missing.

    ``window`` holds the samples from the one that opened the window to the
    one that closes it. Missing metrics leave NaNs so that
    ``Observation.is_finite()`` is False and the guards hold (never scale down blind).
    """
    ok = [s for s in window if s.scrape is not None and app_seen(s.scrape, app)]
    missing = len(ok) < 2 or ok[-1] is not window[-1]
    nan = math.nan
    timed_out = 0
    dispersion: tuple[tuple[float, float], ...] = ()
    if missing:
        arrivals = completed = dropped = 0
        p50 = p95 = p99 = slo = nan
    else:
        first, last = ok[0].scrape, ok[-1].scrape
        assert first is not None and last is not None
        arrivals, completed, failed = window_counts(first, last, app)
        timed_out = min(failed, gave_up_count(first, last, app))
        dropped = failed - timed_out
        # Counts per sample slot: how bursty arrivals were within the window, at the sample interval.
        per_slot = [window_counts(a.scrape, b.scrape, app)[0] for a, b in zip(ok, ok[1:])
                    if a.scrape is not None and b.scrape is not None]
        dispersion = burst.of_counts(per_slot, (ok[-1].t - ok[0].t) / (len(ok) - 1))
        h = latency_window(first, last, app)
        p50, p95, p99 = (pt.quantile(h, q) for q in (0.5, 0.95, 0.99))
        finished = completed + failed
        within = pt.fraction_at_most(h, sc.slo.latency_ms)
        slo = within * completed / finished if finished and math.isfinite(within) else nan
    pools = []
    for spec in sc.pools:
        d = state.deployments.get(spec.name)
        ongoing = nan if missing else gauge_mean(ok, ONGOING_AT_REPLICAS, app, spec.name)
        queued = nan if missing else gauge_mean(ok, QUEUED_AT_HANDLES, app, spec.name)
        pools.append(PoolObs(
            name=spec.name,
            running=d.running if d else 0, starting=d.starting if d else 0,
            pending=d.pending if d else 0, draining=d.draining if d else 0,
            batch_size=(d.batch_size if d and d.batch_size else spec.batch_size),
            ongoing_requests=ongoing, queued_requests=queued,
            preemptions=(preemptions or {}).get(spec.name, 0),
            unplaceable=(unplaceable or {}).get(spec.name, 0),
            target_replicas=d.target if d else 0,
            max_queued=d.max_queued if d else -1,
        ))
    queued_total = sum(p.queued_requests for p in pools)
    return Observation(
        time_s=now, window_s=window_s, arrivals=arrivals, completed=completed, dropped=dropped,
        timed_out=timed_out, p50_ms=p50, p95_ms=p95, p99_ms=p99, slo_attainment=slo,
        queued_requests=int(round(queued_total)) if math.isfinite(queued_total) else 0,
        pools=tuple(pools), dispersion=dispersion,
    )
