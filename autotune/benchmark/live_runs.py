"""One policy run on a real local Ray Serve cluster, and its simulated twin, for the live benchmarks.

``run_builtin`` deploys the scenario's app under Serve's own autoscaler, ``run_autotune`` under
``autotune control`` with a policy; both replay the same arrivals open-loop and measure replica-seconds
(replicas holding a GPU, from the Serve REST API every second), dollars at the scenario's price, and
latency and SLO attainment from the load generator. ``simulated_row`` is the simulator's prediction of
the same run.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import numpy as np

from autotune.cli_common import console
from autotune.core import GuardConfig
from autotune.live.actuator import ServeActuator
from autotune.live.controller import Controller, ControllerConfig
from autotune.live.http import RetryingClient
from autotune.live.loadgen import Result, replay, summarize
from autotune.live.localray import LocalRay
from autotune.live.serve_api import ServeAPI, scrape_all
from autotune.live.serve_config import render
from autotune.live.serve_state import app_state
from autotune.registry import make_policy
from autotune.scenario import Scenario
from autotune.sim.run import SimResult, simulate
from autotune.workload.arrivals import Arrivals


class ReplicaMeter(threading.Thread):
    """Integrates replicas holding a GPU (running + starting + draining) over time, from the REST API."""

    def __init__(self, cluster: LocalRay, app: str, pools: list[str], every_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.cluster, self.app, self.pools, self.every_s = cluster, app, pools, every_s
        self.replica_s = {p: 0.0 for p in pools}
        self.peak = {p: 0 for p in pools}
        self.timeline: list[tuple[float, int]] = []  # (s since start, replicas holding a GPU)
        self.stop = threading.Event()

    def run(self) -> None:
        last = start = time.monotonic()
        counts = {p: 0 for p in self.pools}
        while not self.stop.is_set():
            try:
                st = app_state(self.cluster.details(), self.app)
                if st is not None:
                    counts = {p: (d.running + d.starting + d.draining) if (d := st.deployments.get(p)) else 0
                              for p in self.pools}
            except httpx.HTTPError:
                pass  # keep the last counts for this second
            now = time.monotonic()
            for p in self.pools:
                self.replica_s[p] += counts[p] * (now - last)
                self.peak[p] = max(self.peak[p], counts[p])
            last = now
            self.timeline.append((round(now - start, 1), sum(counts.values())))
            self.stop.wait(self.every_s)


def warm_up(url: str, n: int = 4) -> None:
    """A few requests so Serve's request series exist (the controller holds while metrics are missing)."""
    for _ in range(n):
        httpx.post(url, json={}, timeout=30)


def measured_row(name: str, results: list[Result], meter: ReplicaMeter, sc: Scenario) -> dict[str, Any]:
    s = summarize(results, sc.slo.latency_ms)
    prices = {r.name: r.price_per_hour for r in sc.runtime_pools()}
    usd = sum(meter.replica_s[p] / 3600 * prices[p] for p in meter.pools)
    return {"run": name, "source": "measured", "requests": s["requests"], "failed": s["failed"],
            "replica_s": sum(meter.replica_s.values()), "peak_replicas": sum(meter.peak.values()), "usd": usd,
            "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "slo_attainment": s["slo_attainment"],
            "timeline": meter.timeline}


def every_10s(timeline: Sequence[tuple[float, int]]) -> str:
    """Replicas at each 10 s mark, for the printed summary."""
    out, mark = [], 0.0
    for t, n in timeline:
        if t >= mark:
            out.append(str(n))
            mark += 10.0
    return " ".join(out)


def fresh_start(cluster: LocalRay) -> None:
    """No app, no replica left from the previous run: every run starts from the scenario's initial fleet."""
    cluster.delete_apps()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and cluster.details().get("applications"):
        time.sleep(1.0)


def served_span(run: SimResult, summary: Mapping[str, Any]) -> tuple[float, float]:
    """(replica-seconds, dollars) from the start until the last request is answered: the span a live run's
    meter covers (the simulator goes on for the scenario's ``drain_s`` after the last arrival)."""
    finish = run.request_records()["finish_s"]
    end = float(np.nanmax(finish)) if np.isfinite(finish).any() else 0.0
    usd = 0.0
    for w in run.window_records():
        t0, t1 = float(w["t0_s"]), float(w["t1_s"])
        usd += float(w["cost_usd"]) * min(1.0, max(0.0, (end - t0) / (t1 - t0)))
    total = float(summary["cost_usd"])
    return float(summary["gpu_hours"]) * 3600 * (usd / total if total > 0 else 0.0), usd


def simulated_row(name: str, sc: Scenario, arrivals: Arrivals, policy: str, seeds: Sequence[int]) -> dict[str, Any]:
    """The simulator's prediction: the mean over ``seeds`` (service-time noise and routing differ per seed), with
    replica-seconds and dollars over the span a live run measures (:func:`served_span`)."""
    runs = [simulate(sc, arrivals, make_policy(policy, sc), seed) for seed in seeds]
    sums = [r.summary() for r in runs]
    spans = [served_span(r, s) for r, s in zip(runs, sums, strict=True)]
    lat = np.concatenate([r.latencies_ms() for r in runs])
    p50, p99 = (float(v) for v in np.percentile(lat, [50, 99])) if lat.size else (math.nan, math.nan)

    def mean(k: str) -> float:
        return float(np.mean([float(s[k]) for s in sums]))

    return {"run": name, "source": "simulated", "requests": sums[0]["requests"], "failed": mean("dropped"),
            "replica_s": float(np.mean([s[0] for s in spans])), "peak_replicas": math.nan,
            "usd": float(np.mean([s[1] for s in spans])), "p50_ms": p50, "p99_ms": p99,
            "slo_attainment": mean("slo_attainment")}


def run_builtin(cluster: LocalRay, sc: Scenario, arrivals: Arrivals, app: str = "bench-ray") -> dict[str, Any]:
    fresh_start(cluster)
    cluster.deploy(render(sc, app_name=app, mode="ray"))
    warm_up(cluster.http_url)
    meter = ReplicaMeter(cluster, app, [p.name for p in sc.pools])
    meter.start()
    results = replay(cluster.http_url, arrivals)
    meter.stop.set()
    meter.join()
    return measured_row("ray built-in", results, meter, sc)


def run_autotune(cluster: LocalRay, sc: Scenario, arrivals: Arrivals, policy: str,
                 guards: GuardConfig | None = None, app: str | None = None) -> dict[str, Any]:
    # A new app name per run: redeploying an unchanged config would keep the last run's replicas.
    app = app or "bench-autotune-" + "".join(c if c.isalnum() else "-" for c in policy)
    fresh_start(cluster)
    cluster.deploy(render(sc, app_name=app, mode="external"))
    warm_up(cluster.http_url)
    client = RetryingClient(timeout_s=5.0)
    api = ServeAPI(cluster.dashboard_url, client)
    # The summary keeps counts, not the decisions: a decision log of every run is not a result to commit.
    counts = {"decisions": 0, "actions": 0, "guarded": 0, "errors": 0}

    def log(rec: Mapping[str, Any]) -> None:
        if rec.get("event") == "decision":
            counts["decisions"] += 1
            counts["actions"] += len(rec.get("actions") or [])
            counts["guarded"] += bool(rec.get("guards"))
        counts["errors"] += len(rec.get("errors") or []) + (rec.get("event") == "error")

    cfg = ControllerConfig(app=app, interval_s=sc.control_interval_s, sample_s=1.0, guards=guards or GuardConfig())
    ctl = Controller(cfg, sc, make_policy(policy, sc), lambda: api.app(app),
                     lambda: scrape_all(client, [cluster.metrics_url]), ServeActuator(api, app), log)
    stop = threading.Event()
    loop = threading.Thread(target=ctl.run, args=(None, stop.is_set), daemon=True)
    loop.start()
    meter = ReplicaMeter(cluster, app, [p.name for p in sc.pools])
    meter.start()
    results = replay(cluster.http_url, arrivals)
    meter.stop.set()
    meter.join()
    stop.set()
    loop.join(60)
    client.close()
    console.print(f"controller: {counts}")
    return measured_row(f"autotune {policy}", results, meter, sc) | {"controller": counts}
