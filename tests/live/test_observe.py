"""Scrapes + Serve REST state → Observation (pure, fast)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from autotune.live import promtext as pt
from autotune.live.observe import Sample, build_observation
from autotune.live.serve_state import app_state
from autotune.scenario import load_scenario

DATA = Path(__file__).parent / "data"
APP = "live-demo"


def _scrape(router: float, ok: float, failed: float, ongoing: float, queued: float,
            buckets: dict[str, float]) -> pt.Scrape:
    lines = [
        f'ray_serve_num_router_requests_total{{application="{APP}",deployment="router",handle="h"}} {router}',
        f'ray_serve_num_router_requests_total{{application="{APP}",deployment="l4",handle="r"}} {router * 2}',
        f'ray_serve_num_http_requests_total{{application="{APP}",status_code="200"}} {ok}',
        f'ray_serve_num_http_requests_total{{application="{APP}",status_code="503"}} {failed}',
        f'ray_serve_num_ongoing_requests_at_replicas{{application="{APP}",deployment="l4",handle="a"}} {ongoing}',
        f'ray_serve_num_ongoing_requests_at_replicas{{application="{APP}",deployment="router",handle="b"}} 99',
        f'ray_serve_deployment_queued_queries{{application="{APP}",deployment="l4",handle="a"}} {queued}',
        'ray_serve_num_http_requests_total{application="other",status_code="200"} 12345',
    ]
    for le, c in buckets.items():
        lines.append(f'ray_serve_http_request_latency_ms_bucket{{application="{APP}",status_code="200",le="{le}"}} {c}')
    lines.append(f'ray_serve_http_request_latency_ms_count{{application="{APP}",status_code="200"}} {ok}')
    return pt.parse_prometheus("\n".join(lines))


def _state():
    return app_state(json.loads((DATA / "serve_details.json").read_text()), APP)


def test_serve_state_from_real_rest_answer() -> None:
    st = _state()
    assert st is not None and st.external_scaler_enabled
    d = st.deployments["l4"]
    assert d.running >= 1 and d.batch_size == 4 and d.target >= 1 and len(d.pids) == d.running
    assert app_state({"applications": {}}, APP) is None


def test_pending_vs_starting_vs_draining() -> None:
    reps = [{"state": "RUNNING", "pid": 5, "node_id": "n"}, {"state": "STARTING", "pid": None, "node_id": None},
            {"state": "STARTING", "pid": 7, "node_id": "n"}, {"state": "STOPPING", "pid": 8, "node_id": "n"}]
    st = app_state({"applications": {APP: {"deployments": {"l4": {"replicas": reps, "target_num_replicas": 3}}}}},
                   APP)
    d = st.deployments["l4"]
    assert (d.running, d.starting, d.pending, d.draining, d.target) == (1, 1, 1, 1, 3)


def test_window_rates_percentiles_and_time_averaged_gauges() -> None:
    sc = load_scenario("live-demo")
    a = _scrape(100, 90, 1, 2, 0, {"500": 50, "1000": 80, "2000": 90, "+Inf": 90})
    b = _scrape(150, 138, 3, 6, 4, {"500": 80, "1000": 120, "2000": 138, "+Inf": 138})
    mid = _scrape(120, 100, 1, 4, 2, {"500": 55, "1000": 85, "2000": 100, "+Inf": 100})
    obs = build_observation(sc, APP, _state(), [Sample(0, a), Sample(2.5, mid), Sample(5, b)], 5.0, 5.0)
    assert (obs.arrivals, obs.completed, obs.dropped) == (50, 48, 2)
    assert obs.arrival_rate == 10
    # 40 of the 48 OK requests took <= 1000 ms (the SLO); 2 failed ones count as missed.
    assert obs.slo_attainment == 40 / 50
    assert obs.p50_ms == 400.0 and 1000 < obs.p99_ms <= 2000  # rank 24 of 30 in (0, 500]
    p = obs.pool("l4")
    assert p.ongoing_requests == 4.0 and p.queued_requests == 2.0  # mean of 2, 4, 6 and 0, 2, 4
    assert obs.is_finite()


def test_missing_or_stale_metrics_give_nan_not_zero() -> None:
    sc = load_scenario("live-demo")
    a = _scrape(100, 90, 1, 2, 0, {"+Inf": 90})
    st = _state()
    stale = build_observation(sc, APP, st, [Sample(0, a), Sample(5, None)], 5.0, 5.0)
    assert not stale.is_finite() and math.isnan(stale.pool("l4").ongoing_requests)
    never = build_observation(sc, APP, st, [Sample(0, {}), Sample(5, {})], 5.0, 5.0)
    assert not never.is_finite()
    assert stale.pool("l4").running == st.deployments["l4"].running  # replica counts still come from REST


def test_dispersion_of_arrivals_per_sample_slot() -> None:
    sc = load_scenario("live-demo")
    hist = {"500": 0, "+Inf": 0}

    def window(counts: list[int]) -> list[Sample]:
        total = [100 + sum(counts[:i]) for i in range(len(counts) + 1)]
        return [Sample(2.0 * i, _scrape(c, 0, 0, 0, 0, hist)) for i, c in enumerate(total)]

    steady = build_observation(sc, APP, _state(), window([20, 20, 20, 20, 20]), 10.0, 10.0)
    clumped = build_observation(sc, APP, _state(), window([0, 60, 0, 40, 0]), 10.0, 10.0)
    assert steady.arrivals == clumped.arrivals == 100
    assert steady.dispersion == ((2.0, 0.0),)
    # counts 0, 60, 0, 40, 0: squared steps 3600, 3600, 1600, 1600, the largest left out: 2267 / 2 over mean 20
    assert clumped.dispersion == ((2.0, pytest.approx(6800 / 3 / 2 / 20)),)
    assert build_observation(sc, APP, _state(), window([20, 20]), 10.0, 10.0).dispersion == ()  # too few slots


def test_rejected_requests_are_dropped_clients_that_gave_up_timed_out_and_the_cap_is_read_back() -> None:
    sc = load_scenario("live-demo")

    def scrape(ok: float, rejected: float, timeout: float, gone: float) -> pt.Scrape:
        text = "\n".join([
            f'ray_serve_num_router_requests_total{{application="{APP}",deployment="router",handle="h"}} '
            f'{ok + rejected + timeout + gone}',
            f'ray_serve_num_http_requests_total{{application="{APP}",status_code="200"}} {ok}',
            f'ray_serve_num_http_requests_total{{application="{APP}",status_code="503"}} {rejected}',
            f'ray_serve_num_http_requests_total{{application="{APP}",status_code="408"}} {timeout}',
            f'ray_serve_num_http_requests_total{{application="{APP}",status_code="499"}} {gone}',
            f'ray_serve_http_request_latency_ms_bucket{{application="{APP}",status_code="200",le="+Inf"}} {ok}',
            f'ray_serve_http_request_latency_ms_count{{application="{APP}",status_code="200"}} {ok}',
        ])
        return pt.parse_prometheus(text)

    details = json.loads((DATA / "serve_details.json").read_text())
    details["applications"][APP]["deployments"]["l4"]["deployment_config"]["max_queued_requests"] = 24
    st = app_state(details, APP)
    assert st is not None and st.deployments["l4"].max_queued == 24
    obs = build_observation(sc, APP, st, [Sample(0, scrape(10, 0, 0, 0)), Sample(5, scrape(60, 30, 5, 2))],
                            5.0, 5.0)
    assert (obs.arrivals, obs.completed, obs.dropped, obs.timed_out) == (87, 50, 30, 7)
    assert obs.pool("l4").max_queued == 24
    assert _state().deployments["l4"].max_queued == -1  # Serve's default, as the REST answer gives it
