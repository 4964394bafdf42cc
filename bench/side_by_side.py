"""Side by side: Ray Serve's built-in autoscaler vs ``autotune control``, same trace, same local cluster.

Starts a small local Ray cluster (fake L4 GPUs), deploys the live-demo app
twice and replays the same trace open-loop against each:

1. ``ray``: Serve's built-in autoscaler with the scenario's ``ray_autoscaler`` knobs;
2. ``autotune``: ``external_scaler_enabled`` and the controller running ``--policy``.

Measured: replica-seconds (replicas holding a GPU, sampled every second from the
Serve REST API), dollars at the scenario's price, p50/p99 latency and SLO
attainment from the load generator. Next to them, the simulator's prediction
for the same trace and policies on the same scenario: ``live-demo`` describes
the local app exactly (its model profile is what the emulated replica sleeps,
no node provisioning since the fake GPUs are already there, a 4 s replica start
as measured here), so a policy trained on it sees the same capacities live.

    .venv/bin/python bench/side_by_side.py --policy policies/live-demo.zip,hpa   # about 13 min per policy
    .venv/bin/python bench/side_by_side.py --policy policies/live-demo.zip,hpa --skip-live   # simulated rows

writes the summary (a row per run, measured and simulated) to ``bench/results/side_by_side.json`` (``--out``);
no decision log is kept (the controller's decisions are counted). Takes about (policies + 1) x (trace
duration + 10 s). Keep the load under 60 req/s on a small machine: the Serve HTTP proxy saturates near
80-100 req/s here.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from autotune.benchmark.results import RESULTS, clean
from autotune.cli_common import add_trace_options, console, trace_options
from autotune.core import GuardConfig
from autotune.fileio import write_text_atomic
from autotune.live.actuator import ServeActuator
from autotune.live.controller import Controller, ControllerConfig
from autotune.live.http import RetryingClient
from autotune.live.loadgen import Result, replay, summarize
from autotune.live.localray import LocalRay
from autotune.live.serve_api import ServeAPI, scrape_all
from autotune.live.serve_config import render
from autotune.live.serve_state import app_state
from autotune.registry import make_policy
from autotune.scenario import Scenario, load_scenario
from autotune.sim.run import simulate
from autotune.workload.arrivals import Arrivals, build_arrivals

OUT = RESULTS / "side_by_side.json"


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


def every_10s(timeline: list[tuple[float, int]]) -> str:
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


def simulated_row(name: str, sc: Scenario, arrivals: Arrivals, policy: str, seed: int) -> dict[str, Any]:
    s = simulate(sc, arrivals, make_policy(policy, sc), seed).summary()
    return {"run": name, "source": "simulated", "requests": s["requests"], "failed": s["dropped"],
            "replica_s": float(s["gpu_hours"]) * 3600, "peak_replicas": math.nan, "usd": s["cost_usd"],
            "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "slo_attainment": s["slo_attainment"]}


def run_builtin(cluster: LocalRay, sc: Scenario, arrivals: Arrivals) -> dict[str, Any]:
    app = "bench-ray"
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
                 guards: GuardConfig) -> dict[str, Any]:
    # A new app name per run: redeploying an unchanged config would keep the last run's replicas.
    app = "bench-autotune-" + "".join(c if c.isalnum() else "-" for c in policy)
    fresh_start(cluster)
    cluster.deploy(render(sc, app_name=app, mode="external"))
    warm_up(cluster.http_url)
    client = RetryingClient(timeout_s=5.0)
    api = ServeAPI(cluster.dashboard_url, client)
    # The summary keeps counts, not the decisions: a decision log of every run is not a result to commit.
    counts = {"decisions": 0, "actions": 0, "guarded": 0, "errors": 0}

    def log(rec: dict[str, Any]) -> None:
        if rec.get("event") == "decision":
            counts["decisions"] += 1
            counts["actions"] += len(rec.get("actions") or [])
            counts["guarded"] += bool(rec.get("guards"))
        counts["errors"] += len(rec.get("errors") or []) + (rec.get("event") == "error")

    cfg = ControllerConfig(app=app, interval_s=sc.control_interval_s, sample_s=1.0, guards=guards)
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


def table(rows: list[dict[str, Any]]) -> str:
    cols = [("run", "{}"), ("source", "{}"), ("requests", "{}"), ("failed", "{}"), ("replica_s", "{:.0f}"),
            ("peak_replicas", "{}"), ("usd", "{:.4f}"), ("p50_ms", "{:.0f}"), ("p99_ms", "{:.0f}"),
            ("slo_attainment", "{:.3f}")]
    head = "| " + " | ".join(c for c, _ in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    lines = [head, sep]
    for r in rows:
        cells = []
        for c, fmt in cols:
            v = r[c]
            cells.append("-" if isinstance(v, float) and math.isnan(v) else fmt.format(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="live-demo")
    ap.add_argument("--policy", default="hpa", help="autotune policies, comma-separated (hpa, ray-default, a .zip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help=f"the summary JSON (default, after live runs: {OUT}; with --skip-live: none)")
    ap.add_argument("--skip-live", action="store_true", help="simulator rows only (no cluster)")
    add_trace_options(ap)
    a = ap.parse_args(argv)
    sc = load_scenario(a.scenario)
    policies = [p for p in a.policy.split(",") if p]
    for p in policies:
        make_policy(p, sc)  # a bad policy fails now, not after the first run
    arrivals = build_arrivals(sc, a.seed, trace_options(a))
    peak = max((len(arrivals.times[(arrivals.times >= t) & (arrivals.times < t + 5)]) / 5
                for t in range(0, int(arrivals.duration_s), 5)), default=0.0)
    console.print(f"trace: {len(arrivals)} requests over {arrivals.duration_s:.0f}s, mean {arrivals.mean_rate:.1f} "
                  f"req/s, 5 s peak {peak:.0f} req/s")
    if peak > 60:
        console.print("[red]peak above 60 req/s: this machine's Serve proxy would be the bottleneck[/]")
        return 2
    rows = []
    t_start = time.monotonic()
    if not a.skip_live:
        with tempfile.TemporaryDirectory(prefix="autotune-bench-") as tmp:
            with LocalRay(Path(tmp) / "ray", num_cpus=4, num_gpus=8, resources={"L4": 8}) as cluster:
                t0 = time.monotonic()
                rows.append(run_builtin(cluster, sc, arrivals))
                console.print(f"built-in run done in {time.monotonic() - t0:.0f}s")
                for policy in policies:
                    rows.append(run_autotune(cluster, sc, arrivals, policy, GuardConfig()))
                    console.print(f"autotune {policy} run done in {time.monotonic() - t0:.0f}s")
    rows.append(simulated_row("ray built-in", sc, arrivals, "ray-default", a.seed))
    for policy in policies:
        rows.append(simulated_row(f"autotune {policy}", sc, arrivals, policy, a.seed))
    print(table(rows))
    for r in rows:
        if r["source"] == "measured":
            print(f"replicas every 10 s, {r['run']}: {every_10s(r['timeline'])}")
    # Simulated rows alone never replace a measured summary unless asked to.
    out = Path(a.out) if a.out else None if a.skip_live else OUT
    if out is not None:
        summary = [{k: v for k, v in r.items() if k != "timeline"}
                   | ({"replicas_every_10s": every_10s(r["timeline"])} if "timeline" in r else {}) for r in rows]
        doc = {"command": shlex.join([".venv/bin/python", "bench/side_by_side.py",
                                      *(sys.argv[1:] if argv is None else argv)]),
               "scenario": sc.name, "policies": policies, "requests": len(arrivals),
               "duration_s": arrivals.duration_s, "peak_5s_rate": peak, "wall_s": round(time.monotonic() - t_start, 1),
               "rows": summary}
        write_text_atomic(out, json.dumps(clean(doc), indent=1) + "\n")
        console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
