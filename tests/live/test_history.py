"""Priming from a Prometheus history (``autotune.live.history``): the replay rebuilds exactly the observations
the live loop builds from the same samples, and a bad answer is a one-line error naming the field."""

from __future__ import annotations

import pytest

from autotune.errors import InputError
from autotune.live import observe
from autotune.live import promtext as pt
from autotune.live.history import STALE_S, Series, parse_matrix, prime, replay_windows
from autotune.live.observe import Sample
from autotune.live.serve_state import AppState, DeploymentState
from autotune.policies.registry import make_policy
from autotune.scenario import load_scenario

APP = "a"
BOUNDS = (100.0, 500.0, 1000.0, float("inf"))


def fleet(running: int) -> AppState:
    d = DeploymentState("l4", running, running, 0, 0, 0, 8, {}, (), (), "HEALTHY", "")
    return AppState(APP, "RUNNING", True, {"l4": d})


def scrape(t: float) -> pt.Scrape:
    """A cumulative scrape at second ``t`` of a load at 20 req/s, stepping to 40 after 60 s."""
    n = 20 * t + max(0.0, t - 60) * 20
    lat = {"application": APP, "status_code": "200"}
    rows: pt.Scrape = {
        observe.ROUTER_REQUESTS: [((("application", APP), ("deployment", "router")), n)],
        observe.HTTP_REQUESTS: [(tuple(sorted(lat.items())), n)],
        observe.ONGOING_AT_REPLICAS: [((("application", APP), ("deployment", "l4")), 2.0 + (t > 60))],
        observe.QUEUED_AT_HANDLES: [((("application", APP), ("deployment", "l4")), 0.0)],
        f"{observe.HTTP_LATENCY}_count": [(tuple(sorted(lat.items())), n)],
        f"{observe.HTTP_LATENCY}_sum": [(tuple(sorted(lat.items())), 300.0 * n)],
        f"{observe.HTTP_LATENCY}_bucket": [
            (tuple(sorted({**lat, "le": "+Inf" if b == float("inf") else str(b)}.items())), n * f)
            for b, f in zip(BOUNDS, (0.2, 0.9, 0.99, 1.0), strict=True)],
    }
    return rows


def as_series(times: list[float]) -> list[Series]:
    """What Prometheus stores from scraping at ``times``: one series per (name, labels)."""
    by: dict[tuple[str, pt.Labels], list[tuple[float, float]]] = {}
    for t in times:
        for name, rows in scrape(t).items():
            for labels, v in rows:
                by.setdefault((name, labels), []).append((t, v))
    return [Series(n, lab, tuple(t for t, _ in pts), tuple(v for _, v in pts)) for (n, lab), pts in by.items()]


def test_replayed_history_gives_the_live_loops_observations() -> None:
    sc = load_scenario("live-demo")
    times = [float(t) for t in range(0, 121)]
    series = as_series(times)
    windows = replay_windows(series, 0.0, 120.0, 10.0, 2.0)
    assert len(windows) == 12 and [s.t for s in windows[0]] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    for k, w in enumerate(windows, start=1):
        live = [Sample(s.t, scrape(s.t)) for s in w]  # what the controller's own scrapes read
        got = observe.build_observation(sc, APP, fleet(2), w, k * 10.0, 10.0)
        want = observe.build_observation(sc, APP, fleet(2), live, k * 10.0, 10.0)
        assert got == want
    last = observe.build_observation(sc, APP, fleet(2), windows[-1], 120.0, 10.0)
    assert last.arrivals == 400 and last.pool("l4").ongoing_requests == 3.0


def test_prime_folds_the_policy_over_the_history() -> None:
    sc = load_scenario("live-demo")
    policy = make_policy("predictive+crowd:3", sc)
    series = as_series([float(t) for t in range(0, 121)])
    primed = prime(policy, sc, APP, fleet(2), replay_windows(series, 0.0, 120.0, 10.0, 2.0), 10.0)
    assert primed.windows == primed.decided == 12 and primed.saved.t == 120.0
    assert primed.saved.state["rates"] == [20.0] * 6 + [40.0] * 6
    # The same fold the live loop makes, window by window.
    state = policy.initial_state()
    for k, w in enumerate(replay_windows(series, 0.0, 120.0, 10.0, 2.0), start=1):
        _, state = policy.decide(observe.build_observation(sc, APP, fleet(2), w, k * 10.0, 10.0), state)
    assert state == primed.saved.state


def test_windows_without_metrics_are_not_decided() -> None:
    sc = load_scenario("live-demo")
    series = as_series([float(t) for t in range(60, 121)])  # the app appeared at 60 s
    primed = prime(make_policy("predictive", sc), sc, APP, fleet(1),
                   replay_windows(series, 0.0, 120.0, 10.0, 2.0), 10.0)
    assert (primed.windows, primed.decided) == (12, 6)
    assert "12 windows (2 min)" in primed.note("http://p") and "6 without" in primed.note("http://p")


def test_a_stale_series_reads_as_missing() -> None:
    s = Series("x", (), (0.0, 10.0), (1.0, 2.0))
    assert (s.at(-1.0), s.at(0.0), s.at(9.9), s.at(10.0 + STALE_S), s.at(10.1 + STALE_S)) == (None, 1.0, 1.0, 2.0, None)


@pytest.mark.parametrize("body, field", [
    ({"status": "error", "error": "parse error"}, "status"),
    ({"status": "success", "data": {"resultType": "vector", "result": []}}, "data.resultType"),
    ({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}}]}}, "data.result[0]"),
    ({"status": "success", "data": {"resultType": "matrix",
                                    "result": [{"metric": {"__name__": "x"}, "values": [[1, "zz"]]}]}},
     "data.result[0]"),
])
def test_a_bad_answer_names_the_field(body: object, field: str) -> None:
    with pytest.raises(InputError) as e:
        parse_matrix(body, "http://p/api/v1/query")
    assert str(e.value).startswith(f"http://p/api/v1/query: {field}:")
