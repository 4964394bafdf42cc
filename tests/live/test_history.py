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
from autotune.registry import make_policy
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


def test_past_windows_carry_the_replicas_serving_then() -> None:
    from autotune.live.history import REPLICA_HEALTHY, fleet_at

    def healthy(replica: str, v: float) -> tuple[pt.Labels, float]:
        return (("application", APP), ("deployment", "l4"), ("replica", replica)), v

    now = fleet(1)
    then = fleet_at(now, {REPLICA_HEALTHY: [healthy("a", 1.0), healthy("b", 1.0), healthy("c", 0.0)]})
    d = then.deployments["l4"]
    assert (d.running, d.starting, d.pending, d.target, d.batch_size) == (2, 0, 0, 2, 8)
    assert fleet_at(now, {}).deployments["l4"] == now.deployments["l4"]  # no gauge: today's fleet


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


# Not ray-default: its look-back holds the replica counts it wanted, which count starting replicas.
@pytest.mark.parametrize("name", ["predictive+crowd:3", "burst", "policies/default.zip"])
def test_primed_state_is_the_state_of_a_controller_that_never_stopped(name: str) -> None:
    """In the simulator: the history (each past window's load, latency and serving replicas, nothing starting,
    today's batch sizes) folds into exactly the state the policy reached deciding along, for the rules and the
    shipped guarded policy: what they learn is learnt from load, which the history holds. bench/restart.py
    measures what a cold restart costs, and what priming gets back."""
    from autotune.live.history import as_recorded, fold
    from autotune.paths import ROOT
    from autotune.sim.run import simulate
    from autotune.workload.arrivals import build_arrivals

    sc = load_scenario("default")
    sc = sc.model_copy(update={"workload": sc.workload.model_copy(update={"duration_s": 900.0})})
    policy = make_policy(str(ROOT / name) if name.endswith(".zip") else name, sc)
    seen: list[tuple[observe.Observation, dict[str, object]]] = []

    class Along:
        def __init__(self) -> None:
            self.name = policy.name

        def initial_state(self) -> dict[str, object]:
            return policy.initial_state()

        def decide(self, obs, state):  # type: ignore[no-untyped-def]
            decision, state = policy.decide(obs, state)
            seen.append((obs, state))
            return decision, state

    simulate(sc, build_arrivals(sc, 7, None), Along(), 7)
    for k in (30, 75):
        now = seen[k][0]
        state, decided = fold(policy, [as_recorded(o, now) for o, _ in seen[:k]])
        assert decided == k and state == seen[k - 1][1]
    # Replicas were starting in some windows, so the replayed windows are not all the ones the policy saw.
    assert any(o.pools != as_recorded(o, seen[75][0]).pools for o, _ in seen[:75])
