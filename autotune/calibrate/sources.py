"""Where calibration's samples come from: a Prometheus server's recent past, or a live cluster's endpoints.

From Prometheus, one range query (``query_range``) evaluates the app's Serve series every ``step_s``
over the span, each point the series' last value at or before it, as a scrape at that instant would
have read it; :func:`autotune.live.history.scrape_at` then turns the series into those scrapes. Live,
the endpoints are scraped every ``step_s`` for ``span_s``, as the controller scrapes them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlencode

from autotune.calibrate.measure import METRICS
from autotune.errors import InputError
from autotune.live import history
from autotune.live.http import RequestRejected, RetryingClient, Unreachable
from autotune.live.observe import Sample
from autotune.live.serve_api import scrape_all

# Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS = 11_000


def range_params(app: str, start: float, end: float, step_s: float) -> str:
    names = "|".join(METRICS)
    query = f'{{__name__=~"{names}",application="{app}"}}'
    return urlencode({"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:g}s"})


def from_prometheus(client: RetryingClient, prom_url: str, app: str, end: float, span_s: float,
                    step_s: float, flag: str = "--prometheus") -> list[Sample]:
    """The samples at ``end - span_s``, ``+ step_s``, ... ``end`` (InputError naming ``flag`` if unreadable)."""
    if span_s / step_s > MAX_POINTS:
        raise InputError("command line", "--last", f"{span_s:g} s at a {step_s:g} s step is more than "
                         f"{MAX_POINTS:,} points a series (a longer --step)")
    start = end - span_s
    url = f"{prom_url.rstrip('/')}/api/v1/query_range"
    try:
        body = client.get_json(url + "?" + range_params(app, start, end, step_s))
    except (Unreachable, RequestRejected) as e:
        raise InputError("command line", flag, f"cannot read the metrics ({e})") from None
    series = history.parse_matrix(body, url)
    n = int(math.floor(span_s / step_s + 1e-9))
    return [Sample(t, history.scrape_at(series, t)) for t in (start + k * step_s for k in range(n + 1))]


def from_endpoints(client: RetryingClient, urls: Sequence[str], span_s: float, step_s: float,
                   clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                   flag: str = "--metrics-url") -> list[Sample]:
    """Scrape every endpoint each ``step_s`` for ``span_s`` (InputError if the first scrape fails; a later
    failed scrape is a missing sample, and the window around it spans the gap)."""
    out: list[Sample] = []
    t0 = clock()
    k = 0
    while True:
        try:
            scrape = scrape_all(client, urls)
        except (Unreachable, RequestRejected) as e:
            if not out:
                raise InputError("command line", flag, f"cannot read the metrics ({e})") from None
            scrape = None
        out.append(Sample(clock() - t0, scrape))
        k += 1
        if k * step_s > span_s + 1e-9:
            return out
        sleep(max(0.0, t0 + k * step_s - clock()))
