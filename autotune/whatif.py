"""What-if: the same arrivals under several policies, plus two clairvoyant plans.

``oracle-startup`` knows the future but pays the pools' start-up delays;
``oracle`` knows it and starts replicas instantly. The gap between them is
what start-up delay costs however well one forecasts; the gap from a policy
to ``oracle-startup`` is what not knowing the future costs. ``oracle`` is a
bound; ``oracle-startup`` is a plan a clairvoyant controller could run, not an
optimum (on a short span a static fleet can cost less: it holds no replica for a
peak that queueing absorbs).

With ``insure=K`` a third plan follows: ``oracle+crowd:K``, the oracle that
never holds less than the fleet a K x surge of the calm load needs, as
``POLICY+crowd:K`` does. A policy that keeps a surprise crowd must hold that
insurance without knowing when the crowd comes; the gap from ``oracle`` to this
plan is its price in hindsight, and the gap from it to a policy the rest.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autotune.core.types import Policy
from autotune.fileio import atomic_path, write_atomic
from autotune.policies.oracle import make_oracle
from autotune.registry import make_policy
from autotune.scenario import Scenario
from autotune.sim.capacity import measure_capacity
from autotune.sim.cluster import SimConfig, Window
from autotune.sim.run import SUMMARY_COLUMNS, SimResult, simulate
from autotune.workload.arrivals import Arrivals, TraceOptions, build_arrivals

Progress = Callable[[str, float], None]  # (policy, fraction of simulated time done)


@dataclass
class WhatIf:
    scenario: Scenario
    arrivals: Arrivals
    results: list[SimResult]  # the policies asked for, then oracle-startup, the oracle, oracle+crowd:K if insured
    n_policies: int  # how many of ``results`` are the policies asked for

    def rows(self) -> list[dict[str, float | int | str]]:
        return [r.summary() for r in self.results]


def run_whatif(scenario: Scenario, policies: Sequence[str | Policy], seed: int = 0,
               options: TraceOptions | None = None, progress: Progress | None = None,
               arrivals: Arrivals | None = None, insure: float = 0.0) -> WhatIf:
    """Simulate each policy on identical arrivals (and identical cluster RNG), then the two clairvoyant plans,
    and with ``insure`` > 0 the oracle insured against an ``insure`` x surge."""
    arr = arrivals if arrivals is not None else build_arrivals(scenario, seed, options)
    capacity = measure_capacity(scenario)
    built = [make_policy(p, scenario, capacity) if isinstance(p, str) else p for p in policies]
    end = arr.duration_s + scenario.drain_s
    results = []

    def tick(name: str) -> Callable[[Window], None] | None:
        return (lambda w: progress(name, w.t1 / end)) if progress else None

    for pol in built:
        results.append(simulate(scenario, arr, pol, seed, on_window=tick(pol.name)))
    early = make_oracle(scenario, arr, capacity, start_up=True)
    results.append(simulate(scenario, arr, early, seed, on_window=tick(early.name)))
    oracle = make_oracle(scenario, arr, capacity)
    results.append(simulate(scenario, arr, oracle, seed, SimConfig(instant_start=True), on_window=tick("oracle")))
    if insure > 0:
        insured = make_oracle(scenario, arr, capacity, insure=insure)
        results.append(simulate(scenario, arr, insured, seed, SimConfig(instant_start=True),
                                on_window=tick(insured.name)))
    return WhatIf(scenario, arr, results, len(built))


def verdict(result: WhatIf) -> str:
    """One line under the table: what start-up delay (and insurance) costs, and the cheapest policy that kept
    the SLO target."""
    rows = result.rows()
    early, bound = (float(r["cost_usd"]) for r in rows[result.n_policies:result.n_policies + 2])
    insured = rows[result.n_policies + 2:]
    target = result.scenario.slo.target
    kept = [r for r in rows[:result.n_policies] if float(r["slo_attainment"]) >= target]
    share = f" (start-up delay {early / bound - 1:+.0%})" if bound > 0 else ""
    line = f"clairvoyant: oracle ${bound:,.2f}, oracle-startup ${early:,.2f}{share}"
    for r in insured:
        cost = float(r["cost_usd"])
        k = str(r["policy"]).rpartition(":")[2]
        line += f", {r['policy']} ${cost:,.2f}" + (f" (insured for a {k}x surge: {cost / bound:.2f}x oracle)"
                                                   if bound > 0 else "")
    if not kept:
        return line + f"; no policy kept the {target:.1%} SLO target"
    best = min(kept, key=lambda r: float(r["cost_usd"]))
    cost = float(best["cost_usd"])
    against = [(early, "oracle-startup")] + [(float(r["cost_usd"]), str(r["policy"])) for r in insured]
    parts = [f"{cost / c:.2f}x {name}" for c, name in against if c > 0]
    ratio = f" ({', '.join(parts)})" if parts else ""
    return line + f"; cheapest at the {target:.1%} target: {best['policy']} ${cost:,.2f}{ratio}"


def _fmt(v: float | int | str) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def write_csv(result: WhatIf, path: str | Path) -> None:
    def writer(fh) -> None:  # type: ignore[no-untyped-def]
        w = csv.writer(fh)
        w.writerow(SUMMARY_COLUMNS)
        for row in result.rows():
            w.writerow([_fmt(row[c]) for c in SUMMARY_COLUMNS])

    write_atomic(path, writer)


def write_records(result: WhatIf, folder: str | Path) -> list[Path]:
    """Per policy: ``POLICY.requests.csv`` (one row a request) and ``POLICY.windows.csv`` (one a window)."""
    folder = Path(folder)
    written = []
    for res in result.results:
        stem = res.policy.replace("/", "_").replace(":", "_")
        req = res.request_records()

        def requests(fh, req=req) -> None:  # type: ignore[no-untyped-def]
            w = csv.writer(fh)
            w.writerow(req.dtype.names)
            for row in req.tolist():
                w.writerow([_fmt(v) if isinstance(v, float) else v for v in row])

        windows = res.window_records()

        def window_rows(fh, windows=windows) -> None:  # type: ignore[no-untyped-def]
            w = csv.DictWriter(fh, fieldnames=list(windows[0]))
            w.writeheader()
            w.writerows({k: _fmt(v) for k, v in row.items()} for row in windows)

        for name, writer in ((f"{stem}.requests.csv", requests), (f"{stem}.windows.csv", window_rows)):
            write_atomic(folder / name, writer)
            written.append(folder / name)
    return written


def plot(result: WhatIf, path: str | Path) -> None:
    """Load, replicas by pool and latency over time: one panel column per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(result.results)
    fig, axes = plt.subplots(3, n, figsize=(4.2 * n, 8), sharex=True, squeeze=False)
    slo = result.scenario.slo.latency_ms
    for j, res in enumerate(result.results):
        ws = res.windows
        t = np.array([w.t1 for w in ws]) / 60.0
        rate = np.array([w.arrivals / max(w.t1 - w.t0, 1e-9) for w in ws])
        ax = axes[0, j]
        ax.plot(t, rate, color="black", lw=1)
        ax.set_title(res.policy)
        ax.set_ylabel("arrivals (req/s)" if j == 0 else "")
        ax = axes[1, j]
        pools = [p.name for p in result.scenario.pools]
        stacks = [np.array([w.replicas[p]["running"] for w in ws]) for p in pools]
        ax.stackplot(t, *stacks, labels=pools, step="post", alpha=0.8)
        starting = np.array([sum(w.replicas[p]["starting"] + w.replicas[p]["pending"] for p in pools) for w in ws])
        ax.plot(t, np.sum(stacks, axis=0) + starting, color="gray", ls="--", lw=1, label="incl. starting")
        ax.set_ylabel("running replicas" if j == 0 else "")
        if j == 0:
            ax.legend(loc="upper left", fontsize=7)
        ax = axes[2, j]
        p99 = np.array([np.percentile(w.latency_ms, 99) if w.latency_ms.size else np.nan for w in ws])
        p50 = np.array([np.percentile(w.latency_ms, 50) if w.latency_ms.size else np.nan for w in ws])
        ax.plot(t, p50, lw=1, label="p50")
        ax.plot(t, p99, lw=1, label="p99")
        ax.axhline(slo, color="red", ls=":", lw=1, label="SLO")
        ax.set_yscale("log")
        ax.set_xlabel("minutes")
        ax.set_ylabel("latency (ms)" if j == 0 else "")
        if j == 0:
            ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(f"{result.scenario.name}: {len(result.arrivals):,} requests, {result.arrivals.source}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
