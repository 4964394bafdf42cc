"""The traffic read from Prometheus (``autotune.optimize.promtraffic``): per-step requests from a known counter,
resets and coarse scrapes included, through a real HTTP server speaking Prometheus' query API."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from autotune.errors import InputError
from autotune.live import observe
from autotune.live.history import STALE_S
from autotune.optimize.promtraffic import read_traffic
from tests.optimize.conftest import Answer, FakePrometheus, matrix

APP = "app"
END = 1_000_000.0
STEP = 10.0
ROUTER = {"__name__": observe.ROUTER_REQUESTS, "application": APP, "deployment": "router"}


def http_series(code: str, route: str = "/") -> dict[str, str]:
    return {"__name__": observe.HTTP_REQUESTS, "application": APP, "route": route, "status_code": code}


def cumulative(t0: float, every: float, increments: list[float], first: float = 0.0) -> list[tuple[float, float]]:
    """Samples every ``every`` seconds from ``t0``: ``first`` and then the running sum of ``increments``."""
    return [(t0 + every * k, first + v) for k, v in enumerate(np.concatenate([[0.0], np.cumsum(increments)]))]


def served(fake_prometheus: Callable[[Answer], FakePrometheus],
           series: list[tuple[dict[str, str], list[tuple[float, float]]]]) -> FakePrometheus:
    return fake_prometheus(lambda query, t: (200, matrix(series)))


def test_counts_per_step_from_a_counter_with_a_reset(fake_prometheus: Callable[[Answer], FakePrometheus]) -> None:
    start = END - 6 * STEP
    # Before the span (in the lookback): not counted. Then +5, +7, +0, and the process restarts: the counter reads
    # 3 at the next sample (3 new requests), then +10, +4.
    before = [(start - 60.0, 40.0), (start, 100.0)]
    after = [(start + 10, 105.0), (start + 20, 112.0), (start + 30, 112.0), (start + 40, 3.0), (start + 50, 13.0),
             (start + 60, 17.0)]
    other_proxy = cumulative(start, STEP, [1, 1, 1, 1, 1, 1], first=50.0)
    # A completions counter of the same app: not arrivals while the router counter is there.
    ignored = cumulative(start, STEP, [100] * 6)
    prom = served(fake_prometheus, [(ROUTER, before + after), ({**ROUTER, "instance_id": "2"}, other_proxy),
                                    (http_series("200"), ignored)])
    got = read_traffic(prom.url, APP, 6 * STEP, STEP, end=END)
    assert got.metric == observe.ROUTER_REQUESTS and got.series == 2
    assert got.trace.counts.tolist() == [6, 8, 1, 4, 11, 5]
    assert got.trace.start_s.tolist() == [0, 10, 20, 30, 40, 50] and got.trace.width_s.tolist() == [STEP] * 6
    assert got.csv_text().splitlines()[:3] == ["start_s,requests", "0.0,6", "10.0,8"]
    # One range query of the request counters of the app, with a lookback before the span, at the span's end.
    (query, t), = prom.queries
    assert t == END and f'application="{APP}"' in query and f"[{int(6 * STEP + STALE_S)}s]" in query
    assert observe.ROUTER_REQUESTS in query and observe.HTTP_REQUESTS in query


def test_without_the_router_counter_every_http_series_counts(
        fake_prometheus: Callable[[Answer], FakePrometheus]) -> None:
    start = END - 4 * STEP
    ok = cumulative(start, STEP, [10, 20, 30, 40], first=1000.0)
    failed = cumulative(start, STEP, [1, 0, 2, 0], first=7.0)
    # A series appearing within the span (its first request): its first value is new requests.
    new_route = [(start + 25, 2.0), (start + 40, 5.0)]
    prom = served(fake_prometheus, [(http_series("200"), ok), (http_series("503"), failed),
                                    (http_series("200", "/v2"), new_route)])
    got = read_traffic(prom.url, APP, 4 * STEP, STEP, end=END)
    assert got.metric == observe.HTTP_REQUESTS and got.series == 3
    # /v2: 2 in the step of its first sample (20..30), then 3 over (25, 40]: 1 in 20..30, 2 in 30..40.
    assert got.trace.counts.tolist() == [11, 20, 35, 42]


def test_a_coarse_scrape_is_spread_over_the_steps_it_covers(
        fake_prometheus: Callable[[Answer], FakePrometheus]) -> None:
    start = END - 6 * STEP
    # Scraped every 30 s with steady traffic of 3 req/s: 90 requests a sample, 30 a step.
    prom = served(fake_prometheus, [(ROUTER, cumulative(start, 30.0, [90, 90]))])
    got = read_traffic(prom.url, APP, 6 * STEP, STEP, end=END)
    assert got.trace.counts.tolist() == [30] * 6 and got.requests == 180


@pytest.mark.parametrize("answer,needle", [
    ((200, {"status": "error", "error": "parse error"}), "/api/v1/query: status: Prometheus answered parse error"),
    ((200, {"status": "success", "data": {"resultType": "vector", "result": []}}), "data.resultType: not a matrix"),
    ((200, matrix([])), "data.result: no ray_serve_num_router_requests_total or ray_serve_num_http_requests_total"),
    ((200, matrix([(ROUTER, cumulative(END - 60, STEP, [0] * 6, first=9.0))])),
     "ray_serve_num_router_requests_total: no requests to application 'app'"),
    ((400, {"status": "error", "error": "bad_data"}), "--prometheus: cannot read the history"),
])
def test_bad_answers_are_input_errors(fake_prometheus: Callable[[Answer], FakePrometheus],
                                      answer: tuple[int, object], needle: str) -> None:
    prom = fake_prometheus(lambda query, t: answer)
    with pytest.raises(InputError) as e:
        read_traffic(prom.url, APP, 6 * STEP, STEP, end=END)
    assert needle in str(e.value) and "\n" not in str(e.value)
