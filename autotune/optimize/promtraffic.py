"""The traffic to optimize on, read from a Prometheus server (``autotune optimize --prometheus URL --app A``).

One range query (``autotune.live.history.fetch_history``) reads the app's request counters over the last
``--last`` seconds as raw samples. Arrivals are what the live controller counts (``autotune.live.observe``):
Serve's router counter at autotune's ingress (``ray_serve_num_router_requests_total``, deployment ``router``) when
the app has it, else every ``ray_serve_num_http_requests_total`` series of the app (all routes and status codes).
Each series is differenced sample to sample as the controller differences scrapes: a drop is a restarted
process whose counter starts again from 0, and a series appearing (or coming back after Prometheus' staleness
span) counts its first value as new requests. An increase between two samples is spread evenly over the time
between them, so a scrape interval longer than the step does not turn steady traffic into bursts. The per-step
counts are a rate trace (``start_s,requests``), replayed like a rate trace CSV given with ``--trace``.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np

from autotune.errors import InputError
from autotune.live import observe
from autotune.live.history import STALE_S, Series, fetch_history
from autotune.live.http import RetryingClient
from autotune.live.promtext import counter_delta
from autotune.workload.traces import RateTrace

LAST_S = 3600.0
METRICS = (observe.ROUTER_REQUESTS, observe.HTTP_REQUESTS)


@dataclass(frozen=True)
class PromTraffic:
    url: str
    app: str
    metric: str  # the counter the arrivals come from
    series: int  # how many of its series were summed
    end: float  # unix time of the last step's end
    last_s: float
    step_s: float
    trace: RateTrace

    @property
    def source(self) -> str:
        return f"prometheus {self.url} app {self.app} ({self.metric}, last {self.last_s:g} s)"

    @property
    def requests(self) -> int:
        return int(self.trace.counts.sum())

    def csv_text(self) -> str:
        return "start_s,requests\n" + "".join(f"{float(s)!r},{int(c)}\n"
                                              for s, c in zip(self.trace.start_s, self.trace.counts, strict=True))

    def as_json(self, csv_path: str) -> dict[str, object]:
        return {"prometheus": self.url, "app": self.app, "metric": self.metric, "series": self.series,
                "end_unix_s": round(self.end, 3), "last_s": self.last_s, "step_s": self.step_s,
                "requests": self.requests, "trace": csv_path}


def arrival_series(series: Sequence[Series]) -> tuple[str, list[Series]]:
    """(the counter arrivals come from, its series): the router counter at the ingress if there is one, as
    ``observe.window_counts`` chooses; empty when the app has neither."""
    router = [s for s in series if s.name == observe.ROUTER_REQUESTS and ("deployment", observe.INGRESS) in s.labels]
    if router:
        return observe.ROUTER_REQUESTS, router
    return observe.HTTP_REQUESTS, [s for s in series if s.name == observe.HTTP_REQUESTS]


def _spread(out: np.ndarray, start: float, step_s: float, a: float, b: float, d: float) -> None:
    """Add ``d`` requests over (a, b] to the steps of ``out`` (steps from ``start``), evenly in time."""
    n = out.size
    if b <= a:
        out[min(n - 1, max(0, math.ceil((b - start) / step_s) - 1))] += d
        return
    edges = start + step_s * np.arange(n + 1)
    overlap = np.clip(edges[1:], a, b) - np.clip(edges[:-1], a, b)
    out += d * overlap / (b - a)


def step_increases(s: Series, start: float, step_s: float, n: int) -> np.ndarray:
    """A counter series' increase in each of ``n`` steps from ``start`` (fractional where a sample interval
    straddles a step edge); resets and new series as the live controller counts them."""
    out = np.zeros(n)
    end = start + n * step_s
    i = bisect.bisect_right(s.ts, start) - 1
    prev = (s.ts[i], s.values[i]) if i >= 0 else None
    for t, v in zip(s.ts[i + 1:], s.values[i + 1:], strict=True):
        if t > end:
            break
        if prev is None or t - prev[0] > STALE_S:
            _spread(out, start, step_s, t, t, v)
        else:
            _spread(out, start, step_s, max(prev[0], start), t, counter_delta(prev[1], v))
        prev = (t, v)
    return out


def step_counts(series: Sequence[Series], start: float, step_s: float, n: int) -> np.ndarray:
    """Whole requests per step summed over ``series``; rounded on the running total, so the sum is kept."""
    total = np.zeros(n)
    for s in series:
        total += step_increases(s, start, step_s, n)
    running = np.round(np.cumsum(total))
    return np.diff(running, prepend=0.0).astype(np.int64)


def read_traffic(url: str | None, app: str | None, last_s: float, step_s: float,
                 client: RetryingClient | None = None, end: float | None = None) -> PromTraffic:
    """The app's arrivals per ``step_s`` over the last ``last_s`` seconds before ``end`` (default now)."""
    if url is None or urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise InputError("command line", "--prometheus", f"not an http(s) URL: {url!r}")
    if not app:
        raise InputError("command line", "--app", "required with --prometheus: the Serve application to read")
    if not (math.isfinite(step_s) and step_s > 0):
        raise InputError("command line", "--step", f"must be positive (got {step_s:g})")
    if not (math.isfinite(last_s) and last_s > 0):
        raise InputError("command line", "--last", f"must be positive (got {last_s:g})")
    n = int(last_s // step_s + 1e-9)
    if n < 1:
        raise InputError("command line", "--last", f"{last_s:g} s is shorter than one step of {step_s:g} s")
    end = round(time.time(), 3) if end is None else end  # as the query sends it
    start = end - n * step_s
    own = client is None
    client = client or RetryingClient(timeout_s=30.0)
    try:
        series = fetch_history(client, url, app, end, n * step_s, METRICS, "--prometheus")
    finally:
        if own:
            client.close()
    where = f"{url.rstrip('/')}/api/v1/query"
    metric, chosen = arrival_series(series)
    if not chosen:
        raise InputError(where, "data.result", f"no {observe.ROUTER_REQUESTS} or {observe.HTTP_REQUESTS} series "
                                               f"for application {app!r} in the last {n * step_s:g} s")
    counts = step_counts(chosen, start, step_s, n)
    if counts.sum() == 0:
        raise InputError(where, metric, f"no requests to application {app!r} in the last {n * step_s:g} s")
    trace = RateTrace(step_s * np.arange(n, dtype=np.float64), np.full(n, float(step_s)), counts, where)
    return PromTraffic(url, app, metric, len(chosen), end, n * step_s, step_s, trace)
