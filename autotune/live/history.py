"""Prime a starting controller's policy state from the cluster's recent past in a Prometheus server.

A controller that starts with an empty state decides as on a cold start: the
rules hold their default margins until they have seen a start-up lead of load,
a ``+crowd`` floor does not know the calm load, and a burst guard holds for its
first ``guard_calm_s``. A cluster that has been serving for an hour has that
history in the Prometheus server that scrapes it. ``--prime-from URL`` reads
the last ``--prime-s`` seconds of the same Serve metrics the controller scrapes
(one range query), rebuilds the samples the controller would have taken at its
sample interval (each series' last value at or before the sample time, as
Prometheus' own instant queries do), cuts them into control windows, builds the
very :class:`Observation` the live loop builds for each (``observe.build_observation``),
and folds the policy over them. The decisions are dropped; the state is kept.

The fleet over time comes from Serve's per-replica health gauge
(``ray_serve_deployment_replica_healthy``, one series per replica, 1 while it
serves, a last 0 when it stops): each past window carries the replicas that
were serving at its end. Replicas starting or waiting for a node, and batch
sizes, are not in the metrics, so past windows have none starting and today's
batch sizes.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from autotune.core.types import Observation, Policy, PolicyState
from autotune.errors import InputError
from autotune.live import observe
from autotune.live import promtext as pt
from autotune.live.http import RequestRejected, RetryingClient, Unreachable
from autotune.live.observe import Sample
from autotune.live.saved_state import Saved
from autotune.live.serve_state import AppState
from autotune.scenario import Scenario

REPLICA_HEALTHY = "ray_serve_deployment_replica_healthy"
# What build_observation reads (histograms as their three series), and the fleet.
METRICS = (observe.ROUTER_REQUESTS, observe.HTTP_REQUESTS, observe.ONGOING_AT_REPLICAS, observe.QUEUED_AT_HANDLES,
           *(f"{observe.HTTP_LATENCY}_{s}" for s in ("bucket", "count", "sum")), REPLICA_HEALTHY)
# Prometheus' own lookback: a series with no sample for this long is stale, not a stuck value.
STALE_S = 300.0
# Prometheus adds these when it scrapes; the controller's own scrapes do not have them.
SCRAPE_LABELS = frozenset({"__name__", "job", "instance"})


@dataclass(frozen=True)
class Series:
    name: str
    labels: pt.Labels
    ts: tuple[float, ...]
    values: tuple[float, ...]

    def at(self, t: float) -> float | None:
        """The last value at or before ``t`` unless it is stale."""
        i = bisect.bisect_right(self.ts, t) - 1
        if i < 0 or t - self.ts[i] > STALE_S:
            return None
        return self.values[i]


def range_query(app: str, span_s: float, metrics: Sequence[str] = METRICS) -> str:
    names = "|".join(metrics)
    return f'{{__name__=~"{names}",application="{app}"}}[{int(math.ceil(span_s))}s]'


def parse_matrix(body: object, source: str) -> list[Series]:
    """The ``/api/v1/query`` answer for a range selector → series (InputError naming the bad field)."""
    if not isinstance(body, dict) or body.get("status") != "success":
        err = body.get("error") if isinstance(body, dict) else None
        raise InputError(source, "status", f"Prometheus answered {err or 'not success'}")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise InputError(source, "data.resultType", "not a matrix (is this a Prometheus query API?)")
    out = []
    for i, row in enumerate(data["result"]):
        try:
            metric, values = row["metric"], row["values"]
            labels: pt.Labels = tuple(sorted((str(k), str(v)) for k, v in metric.items() if k not in SCRAPE_LABELS))
            ts = tuple(float(t) for t, _ in values)
            vals = tuple(float(v) for _, v in values)
            name = str(metric["__name__"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(source, f"data.result[{i}]", f"not a series with metric and values ({e})") from None
        out.append(Series(name, labels, ts, vals))
    return out


def fetch_history(client: RetryingClient, prom_url: str, app: str, end: float, span_s: float,
                  metrics: Sequence[str] = METRICS, flag: str = "--prime-from") -> list[Series]:
    """One range query for the app's series of ``metrics`` (default: the Serve metrics the controller reads)
    over ``span_s`` (plus a window of lookback) ending at ``end``; an unreachable server is an InputError
    naming ``flag``."""
    url = f"{prom_url.rstrip('/')}/api/v1/query"
    try:
        body = client.get_json(url + "?" + _params(range_query(app, span_s + STALE_S, metrics), end))
    except (Unreachable, RequestRejected) as e:
        raise InputError("command line", flag, f"cannot read the history ({e})") from None
    return parse_matrix(body, url)


def _params(query: str, t: float) -> str:
    return urlencode({"query": query, "time": f"{t:.3f}"})


def scrape_at(series: Sequence[Series], t: float) -> pt.Scrape:
    """What a scrape at ``t`` would have read, as far as the history holds it."""
    out: pt.Scrape = {}
    for s in series:
        v = s.at(t)
        if v is not None:
            out.setdefault(s.name, []).append((s.labels, v))
    return out


def replay_windows(series: Sequence[Series], start: float, end: float, interval_s: float,
                   sample_s: float) -> list[list[Sample]]:
    """Control windows ending at ``end`` and going back to ``start``, each from the sample that opened it
    to the one that closes it, sampled every ``sample_s`` as the live loop samples."""
    n = int((end - start) // interval_s)
    per = max(1, int(round(interval_s / sample_s)))
    first = end - n * interval_s
    windows = []
    for k in range(n):
        t0 = first + k * interval_s
        ts = [t0 + interval_s * j / per for j in range(per + 1)]
        windows.append([Sample(t, scrape_at(series, t)) for t in ts])
    return windows


@dataclass(frozen=True)
class Primed:
    saved: Saved
    windows: int  # control windows replayed
    decided: int  # of which the policy was asked (the others had no usable metrics: the live loop holds there)

    def note(self, url: str) -> str:
        return (f"primed the policy state from {self.windows} windows "
                f"({self.saved.t / 60:.0f} min) of history at {url}: "
                f"{self.decided} with metrics, {self.windows - self.decided} without")


def fleet_at(state: AppState, scrape: pt.Scrape) -> AppState:
    """``state`` (now) with each deployment's serving replicas as the health gauges in ``scrape`` count them,
    none starting, pending or draining; a deployment with no gauge in ``scrape`` keeps today's counts."""
    deps = dict(state.deployments)
    for name, d in state.deployments.items():
        match = {"application": state.name, "deployment": name}
        if pt.has(scrape, REPLICA_HEALTHY, match):
            running = int(round(pt.total(scrape, REPLICA_HEALTHY, match)))
            deps[name] = replace(d, running=running, starting=0, pending=0, draining=0, target=running)
    return replace(state, deployments=deps)


def as_recorded(past: Observation, now: Observation) -> Observation:
    """A simulated past window as the history records it: its load, latency and serving replicas; nothing
    starting; today's batch sizes; no preemptions (the simulator's twin of :func:`fleet_at`)."""
    pools = tuple(replace(p, starting=0, pending=0, draining=0, batch_size=now.pool(p.name).batch_size,
                          preemptions=0) for p in past.pools)
    return replace(past, pools=pools)


def fold(policy: Policy, observations: Sequence[Observation]) -> tuple[PolicyState, int]:
    """(the state after deciding on every observation with usable metrics, how many that was).

    Windows without usable metrics are skipped, as the live loop holds there without asking the policy."""
    pstate = policy.initial_state()
    decided = 0
    for k, obs in enumerate(observations, start=1):
        if not obs.is_finite():
            continue
        try:
            _, pstate = policy.decide(obs, pstate)
        except Exception as e:  # noqa: BLE001 - reported at start-up, where the user can act on it
            raise InputError("command line", "--prime-from",
                             f"{policy.name} failed on window {k} of the history ({e!r})") from None
        decided += 1
    return pstate, decided


def prime(policy: Policy, sc: Scenario, app: str, state: AppState, windows: Sequence[Sequence[Sample]],
          interval_s: float) -> Primed:
    """Fold the policy over the replayed windows; policy time runs 1, 2, ... windows, so the live loop
    goes on from the last (states that hold times, such as Ray's look-back, stay valid)."""
    obs = [observe.build_observation(sc, app, fleet_at(state, w[-1].scrape or {}), w, k * interval_s, interval_s)
           for k, w in enumerate(windows, start=1)]
    pstate, decided = fold(policy, obs)
    return Primed(Saved(pstate, len(windows) * interval_s), len(windows), decided)
