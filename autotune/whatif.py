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

From Python, :func:`run` is ``autotune whatif`` (the command is built on it)::

    from autotune import whatif

    res = whatif.run("default", ["ray-default", "predictive"], duration=1800)
    res.summary()          # one row per policy, then the clairvoyant plans: the CSV's columns
    res.windows()          # one row per control window per policy: load, fleet by pool, latency, cost, decision
    res.requests("predictive")
    res.plot(); res.verdict()
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autotune.core.types import Policy
from autotune.errors import InputError
from autotune.fileio import atomic_path, write_atomic
from autotune.registry import make_policy
from autotune.scenario import Scenario, load_scenario, with_instance
from autotune.sim.capacity import measure_capacity
from autotune.sim.cluster import SimConfig, Window
from autotune.sim.plan import make_oracle
from autotune.sim.run import SUMMARY_COLUMNS, SimResult, simulate
from autotune.workload.arrivals import Arrivals, TraceOptions, build_arrivals

if TYPE_CHECKING:  # pandas and matplotlib load when a table or figure is asked for, not with the CLI
    import pandas as pd
    from matplotlib.figure import Figure

Progress = Callable[[str, float], None]  # (policy, fraction of simulated time done)
OnArrivals = Callable[[Scenario, Arrivals], None]  # once the arrivals are built, before any simulation


@dataclass
class WhatIfResult:
    """The runs of one what-if: every policy on the same arrivals, then the clairvoyant plans."""

    scenario: Scenario
    arrivals: Arrivals
    results: list[SimResult]  # the policies asked for, then oracle-startup, the oracle, oracle+crowd:K if insured
    n_policies: int  # how many of ``results`` are the policies asked for

    @property
    def policies(self) -> list[str]:
        """Every run's name, in order: the policies asked for, then the clairvoyant plans."""
        return [r.policy for r in self.results]

    def rows(self) -> list[dict[str, float | int | str]]:
        return [r.summary() for r in self.results]

    def result(self, policy: str | int) -> SimResult:
        """One run, by name (the first of that name) or by position in :attr:`policies`."""
        if isinstance(policy, int):
            return self.results[policy]
        for r in self.results:
            if r.policy == policy:
                return r
        raise KeyError(f"no run named {policy!r} (runs: {', '.join(self.policies)})")

    def summary(self) -> pd.DataFrame:
        """One row per run, the columns of ``autotune whatif --out`` (unrounded)."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=list(SUMMARY_COLUMNS))

    def windows(self, policy: str | int | None = None) -> pd.DataFrame:
        """One row per control window of every run (or of one): a ``policy`` column, then the columns of the
        ``--records`` window files: load, queue, latency, replicas by pool and state, batch, cost, the policy's
        decision and what the guards changed."""
        import pandas as pd

        runs = self.results if policy is None else [self.result(policy)]
        return pd.DataFrame([{"policy": r.policy, **row} for r in runs for row in r.window_records()])

    def requests(self, policy: str | int) -> pd.DataFrame:
        """One row per request of one run: the columns of the ``--records`` request files, plus ``latency_ms``
        (NaN for a dropped request)."""
        import pandas as pd

        df = pd.DataFrame(self.result(policy).request_records())
        df["latency_ms"] = (df["finish_s"] - df["arrival_s"]) * 1e3
        return df

    def verdict(self) -> str:
        return verdict(self)

    def plot(self, path: str | Path | None = None) -> Figure:
        """Load, replicas by pool and latency over time, one panel column per run; saved to ``path`` if given
        (the format from its suffix)."""
        fig = _figure(self)
        if path is not None:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=90, format=Path(path).suffix.lstrip(".") or "png")
        return fig

    def write_csv(self, path: str | Path) -> None:
        write_csv(self, path)

    def write_records(self, folder: str | Path) -> list[Path]:
        return write_records(self, folder)


def run(scenario: str | Path | Scenario = "default",
        policies: Sequence[str | Policy] | str | Policy | None = None, *, seed: int = 0,
        trace: str | Path | None = None, mean_rate: float | None = None, duration: float | None = None,
        time_scale: float | None = None, rate_scale: float | None = None, instance: str | None = None,
        insure: float | None = None, progress: Progress | None = None,
        on_arrivals: OnArrivals | None = None) -> WhatIfResult:
    """``autotune whatif`` as a call: the same arguments as its options, the same checks and errors.

    ``scenario``: a name (``envs/NAME.yaml``), a path or a :class:`~autotune.scenario.Scenario`.
    ``policies``: specs as ``--policy`` takes them (``"predictive+crowd:3"``, ``"policies/default.zip"``) or
    :class:`~autotune.core.types.Policy` objects; by default :func:`default_policies`.
    ``trace``, ``mean_rate``, ``duration`` (s), ``time_scale``, ``rate_scale``: the trace options, replacing or
    reshaping the scenario's workload. ``instance``: every pool on that GPU type. ``insure``: also plan
    ``oracle+crowd:K`` (0: not; by default the largest K of the ``+crowd:K``/``+hold:K`` policies asked for).
    ``progress(name, fraction)`` follows each run; ``on_arrivals(scenario, arrivals)`` is called once the
    arrivals are built, before the first run.
    """
    if insure is not None and not (insure == 0 or 1 <= insure <= 100):
        raise InputError("command line", "--insure", f"must be 0 (none) or a surge K with 1 <= K <= 100, "
                                                     f"got {insure:g}")
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if policies is None:
        specs: list[str | Policy] = list(default_policies(sc.name))
    elif isinstance(policies, str) or not isinstance(policies, Sequence):
        specs = [policies]  # one policy, not a sequence of characters
    else:
        specs = list(policies)
    if instance:
        sc = with_instance(sc, instance)
    options = TraceOptions(trace=None if trace is None else str(trace), time_scale=time_scale,
                           rate_scale=rate_scale, mean_rate=mean_rate, duration_s=duration)
    arrivals = build_arrivals(sc, seed, options)
    if len(arrivals) == 0:
        source = trace or (sc.name if isinstance(scenario, Scenario) else scenario)
        raise InputError(str(source), "workload", "no arrivals in the selected span")
    if on_arrivals is not None:
        on_arrivals(sc, arrivals)
    if insure is None:
        insure = insurance([p if isinstance(p, str) else p.name for p in specs])
    return run_whatif(sc, specs, seed, progress=progress, arrivals=arrivals, insure=insure)


def default_policies(scenario: str) -> list[str]:
    """The baselines, autotune's ``predictive`` rule, the rule insured against a surprise crowd (its price, next to
    it), and the shipped policy for this scenario when there is one."""
    from autotune.paths import POLICIES
    from autotune.policies.crowd import CROWD_DEFAULT

    shipped = POLICIES / f"{scenario}.zip"
    return (["static", "ray-default", "hpa", "predictive", f"predictive+crowd:{CROWD_DEFAULT:g}"]
            + ([str(shipped)] if shipped.exists() else []))


def insurance(policies: Sequence[str]) -> float:
    """The largest K of the ``POLICY+crowd:K`` or ``POLICY+hold:K`` asked for (0 if none): the surge the insured
    oracle holds."""
    from autotune.policies.crowd import split_floor
    from autotune.policies.overload import split_shed

    ks = []
    for spec in policies:
        _, mark, k = split_floor(split_shed(spec)[0])
        try:
            ks.append(float(k) if mark else 0.0)
        except ValueError:
            ks.append(0.0)  # make_policy refuses it with a one-line error
    return max(ks, default=0.0)


def run_whatif(scenario: Scenario, policies: Sequence[str | Policy], seed: int = 0,
               options: TraceOptions | None = None, progress: Progress | None = None,
               arrivals: Arrivals | None = None, insure: float = 0.0) -> WhatIfResult:
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
    return WhatIfResult(scenario, arr, results, len(built))


def verdict(result: WhatIfResult) -> str:
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


def write_csv(result: WhatIfResult, path: str | Path) -> None:
    def writer(fh) -> None:  # type: ignore[no-untyped-def]
        w = csv.writer(fh)
        w.writerow(SUMMARY_COLUMNS)
        for row in result.rows():
            w.writerow([_fmt(row[c]) for c in SUMMARY_COLUMNS])

    write_atomic(path, writer)


def write_records(result: WhatIfResult, folder: str | Path) -> list[Path]:
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


def plot(result: WhatIfResult, path: str | Path) -> None:
    """Load, replicas by pool and latency over time: one panel column per policy."""
    result.plot(path)


def _figure(result: WhatIfResult) -> Figure:
    # Not pyplot's: no GUI backend to pick on a headless machine, none switched under a notebook, nothing kept in
    # pyplot's registry. A notebook shows it by its own PNG, whether or not pyplot's inline backend is loaded.
    import numpy as np
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        def _repr_png_(self) -> bytes:
            buf = io.BytesIO()
            self.savefig(buf, format="png", dpi=72)
            return buf.getvalue()

    n = len(result.results)
    fig = ShownFigure(figsize=(4.2 * n, 8))
    axes = fig.subplots(3, n, sharex=True, squeeze=False)
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
    return fig
