"""Run a policy against the simulated cluster, window by window, and summarize."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from autotune.core import LIVE_GUARDS, GuardConfig, Guards, LoopState, clamp_to_bounds, step
from autotune.core.types import Decision, Policy
from autotune.scenario import Scenario
from autotune.sim import kernel as K
from autotune.sim.cluster import ClusterSim, SimConfig, Window
from autotune.workload.arrivals import Arrivals

SUMMARY_COLUMNS = ("policy", "requests", "slo_attainment", "p50_ms", "p95_ms", "p99_ms", "cost_usd",
                   "usd_per_million_requests", "gpu_hours", "scale_actions", "dropped", "rejected", "timed_out", "late")


@dataclass
class SimResult:
    policy: str
    scenario: Scenario
    sim: ClusterSim

    @property
    def windows(self) -> list[Window]:
        return self.sim.windows

    def latencies_ms(self) -> np.ndarray:
        """Latency of every finished request, in arrival order."""
        done = self.sim.status == K.DONE
        return (self.sim.finish_t[done] - self.sim.arr_t[done]) * 1e3

    def request_records(self) -> np.ndarray:
        """One row per request: arrival, start, finish (s; NaN if not served), pool, replica (-1 if not served),
        and whether it was dropped or its client gave up waiting."""
        s = self.sim
        pools = np.array([p.name for p in s.pools] + [""], dtype=object)
        rep_pool = np.array(s.replica_pool + [-1], dtype=np.int64)
        out = np.empty(len(s.arrivals), dtype=[("arrival_s", "f8"), ("start_s", "f8"), ("finish_s", "f8"),
                                               ("pool", "O"), ("replica", "i8"), ("dropped", "?"),
                                               ("timed_out", "?")])
        out["arrival_s"], out["start_s"], out["finish_s"] = s.arr_t, s.start_t, s.finish_t
        out["replica"] = s.served
        out["pool"] = pools[rep_pool[s.served]]
        out["dropped"] = s.status == K.DROPPED
        out["timed_out"] = s.status == K.TIMED_OUT
        return out

    def window_records(self) -> list[dict[str, float | int | str]]:
        """One row per control window: load, queue, latency, fleet by pool and state, batch, cost, decision."""
        rows = []
        for w in self.windows:
            o = w.obs
            assert o is not None
            row: dict[str, float | int | str] = {
                "t0_s": w.t0, "t1_s": w.t1, "arrival_rate": o.arrival_rate, "completed": w.completed,
                "dropped": w.dropped, "rejected": w.rejected, "timed_out": w.timed_out, "late": w.late,
                "queued": o.queued_requests, "p50_ms": o.p50_ms, "p95_ms": o.p95_ms,
                "p99_ms": o.p99_ms, "slo_attainment": o.slo_attainment, "cost_usd": w.cost_usd,
            }
            for p in o.pools:
                for state in ("running", "starting", "pending", "draining"):
                    row[f"{p.name}_{state}"] = getattr(p, state)
                row[f"{p.name}_batch_size"] = p.batch_size
                row[f"{p.name}_mean_batch"] = w.mean_batch[p.name]
                row[f"{p.name}_ongoing"] = p.ongoing_requests
                row[f"{p.name}_max_queued"] = p.max_queued
            row["decision"] = w.decision.reason if w.decision else ""
            row["guards"] = "; ".join(w.guard_notes)
            rows.append(row)
        return rows

    def summary(self) -> dict[str, float | int | str]:
        """The run in one row. Every request is exactly one of: on time, ``late`` (served over the SLO),
        ``dropped`` (no answer: rejected at a queue cap, which ``rejected`` counts, killed with a spot replica, or
        unfinished at the end) or ``timed_out`` (its client gave up while it was queued); ``slo_attainment`` is
        on time over all of them."""
        s = self.sim
        n = len(s.arrivals)
        lat = self.latencies_ms()
        dropped = int(np.sum(s.status == K.DROPPED))
        on_time = int(np.sum(lat <= self.scenario.slo.latency_ms))
        p50, p95, p99 = (np.percentile(lat, [50, 95, 99]) if lat.size else (math.nan,) * 3)
        cost = s.total_cost()
        return {
            "policy": self.policy,
            "requests": n,
            "slo_attainment": on_time / n if n else math.nan,
            "p50_ms": float(p50),
            "p95_ms": float(p95),
            "p99_ms": float(p99),
            "cost_usd": cost,
            "usd_per_million_requests": cost / n * 1e6 if n else math.nan,
            "gpu_hours": s.gpu_hours(),
            "scale_actions": sum(1 for w in s.windows if w.changed),
            "dropped": dropped,
            "rejected": int(s.g[K.REJECT_N]),
            "timed_out": int(np.sum(s.status == K.TIMED_OUT)),
            "late": int(lat.size) - on_time,
        }


class _Default:
    """The guards ``autotune control`` applies, unless the policy is not ``guarded`` (then the bounds alone)."""


AUTO_GUARDS = _Default()


def guards_for(scenario: Scenario, policy: Policy, guards: GuardConfig | None | _Default = AUTO_GUARDS) -> Guards:
    if isinstance(guards, _Default):
        guards = LIVE_GUARDS if getattr(policy, "guarded", True) else None
    return Guards(tuple(scenario.pools), guards)


def simulate(scenario: Scenario, arrivals: Arrivals, policy: Policy, seed: int,
             config: SimConfig | None = None, first: Decision | None = None,
             on_window: Callable[[Window], None] | None = None,
             guards: GuardConfig | None | _Default = AUTO_GUARDS) -> SimResult:
    """Replay ``arrivals`` under ``policy``: at the end of every control window, one
    :func:`autotune.core.step` (decide, guard) and the cluster applies what the guards let through.

    ``guards``: by default the live controller's (:class:`~autotune.core.GuardConfig`), so a what-if predicts
    ``autotune control``; ``None`` applies the pools' bounds alone. A policy that is not ``guarded`` (the
    clairvoyant plans, the emulated built-in autoscalers) runs with the bounds alone by default.

    The run starts with the scenario's initial fleet, or with ``first`` (by default the
    policy's own ``first`` decision, if it has one: a static fleet, the oracle's plan), warm
    unless the policy says ``start_warm = False`` (then ``first`` is asked for at t=0 from the
    initial fleet, paying start-up delays: ``oracle-startup``).
    """
    sim = ClusterSim(scenario, arrivals, seed, config)
    first = first if first is not None else getattr(policy, "first", None)
    if first is not None:
        sim.apply(clamp_to_bounds(first, scenario.pools).decision, warm=getattr(policy, "start_warm", True))
    pipeline = guards_for(scenario, policy, guards)
    state = LoopState.start(policy)
    end = arrivals.duration_s + scenario.drain_s
    interval = scenario.control_interval_s
    t = 0.0
    while t < end - 1e-9:
        t = min(t + interval, end)
        w = sim.run_until(t)
        if t < end - 1e-9:
            assert w.obs is not None
            done, state = step(policy, w.obs, state, pipeline)
            w.decision, w.applied, w.guard_notes = done.decision, done.applied, done.notes
            w.changed = sim.apply(done.applied)
        if on_window is not None:
            on_window(w)
    sim.finish()
    return SimResult(policy.name, scenario, sim)
