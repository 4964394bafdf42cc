"""Prometheus text parsing and window arithmetic (pure, fast)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from autotune.live import promtext as pt

DATA = Path(__file__).parent / "data"


def test_parses_a_real_ray_serve_scrape() -> None:
    s = pt.parse_prometheus((DATA / "serve_metrics.txt").read_text())
    assert pt.total(s, "ray_serve_num_http_requests_total", {"application": "live-demo"}) == 868 + 2914
    assert pt.total(s, "ray_serve_num_http_requests_total", {"status_code": "200"}) == 868
    h = pt.histogram(s, "ray_serve_http_request_latency_ms", {"status_code": "200"})
    assert h.count == 868 and h.buckets[-1] == (math.inf, 868)
    assert 0 < pt.quantile(h, 0.5) <= pt.quantile(h, 0.99)


def test_labels_with_escapes_and_odd_lines() -> None:
    text = '# HELP x y\nm{a="q\\"uote",b="x,y"} 3\nnot a metric line\nm{a="z"} NaN\nn 1e3 1700000000\n'
    s = pt.parse_prometheus(text)
    assert pt.total(s, "m", {"a": 'q"uote'}) == 3
    assert math.isnan(pt.total(s, "m", {"a": "z"}))
    assert pt.total(s, "n") == 1000


def _hist(counts: list[tuple[float, float]]) -> pt.Histogram:
    return pt.Histogram(tuple(counts), counts[-1][1], 0.0)


def test_quantile_and_fraction_interpolate_like_prometheus() -> None:
    h = _hist([(100.0, 50), (200.0, 90), (math.inf, 100)])
    assert pt.quantile(h, 0.5) == pytest.approx(100.0)
    assert pt.quantile(h, 0.7) == pytest.approx(150.0)
    assert pt.quantile(h, 0.99) == pytest.approx(200.0)  # in +Inf: the highest finite bound
    assert pt.fraction_at_most(h, 150.0) == pytest.approx(0.7)
    assert pt.fraction_at_most(h, 1e9) == pytest.approx(0.9)
    assert math.isnan(pt.quantile(pt.Histogram((), 0, 0), 0.5))


def test_deltas_handle_counter_resets() -> None:
    assert pt.counter_delta(10, 25) == 15
    assert pt.counter_delta(10, 4) == 4  # process restarted: all 4 are new
    a = _hist([(100.0, 5), (math.inf, 10)])
    b = _hist([(100.0, 9), (math.inf, 20)])
    d = pt.histogram_delta(a, b)
    assert d.buckets == ((100.0, 4), (math.inf, 10)) and d.count == 10
    assert pt.histogram_delta(b, a) == a
