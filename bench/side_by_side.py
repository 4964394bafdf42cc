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
import time
from pathlib import Path
from typing import Any

from autotune.benchmark.live_runs import every_10s, run_autotune, run_builtin, simulated_row
from autotune.benchmark.results import RESULTS, clean
from autotune.cli_common import add_trace_options, console, trace_options
from autotune.fileio import write_text_atomic
from autotune.live.localray import LocalRay
from autotune.registry import make_policy
from autotune.scenario import load_scenario
from autotune.workload.arrivals import build_arrivals

OUT = RESULTS / "side_by_side.json"


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
                    rows.append(run_autotune(cluster, sc, arrivals, policy))
                    console.print(f"autotune {policy} run done in {time.monotonic() - t0:.0f}s")
    rows.append(simulated_row("ray built-in", sc, arrivals, "ray-default", [a.seed]))
    for policy in policies:
        rows.append(simulated_row(f"autotune {policy}", sc, arrivals, policy, [a.seed]))
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
