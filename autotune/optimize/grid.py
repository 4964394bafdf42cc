"""The evaluation grid: every (slice x candidate x seed) one simulation, as Ray tasks or in this process.

A task takes plain data (the scenario as JSON, a slice's arrival arrays, a :class:`~.candidates.Candidate`, a
seed) and returns plain numbers, so a Ray worker on another machine computes exactly what this process would: the
simulator is deterministic given its seed, and a trained policy decodes deterministically on one torch thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autotune.optimize.candidates import Candidate
from autotune.optimize.split import Slice
from autotune.workload.arrivals import Arrivals

Row = dict[str, Any]
Tick = Callable[[int, int, Row], None]  # (done, total, the row just finished)


@dataclass(frozen=True)
class Task:
    slice: Slice
    candidate: Candidate
    seed: int


def tasks_for(slices: Sequence[Slice], candidates: Sequence[Candidate], seeds: Sequence[int]) -> list[Task]:
    return [Task(s, c, seed) for s in slices for c in candidates for seed in seeds]


def evaluate(scenario_json: str, times: np.ndarray, tokens: np.ndarray, duration_s: float, scored_from_s: float,
             candidate: Candidate, seed: int) -> Row:
    """One simulation; the scored span's cost, requests, on-time requests, drops and scale actions."""
    from autotune.scenario import Scenario
    from autotune.sim import kernel as K
    from autotune.sim.capacity import measure_capacity
    from autotune.sim.run import simulate

    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    sc = Scenario.model_validate_json(scenario_json)
    policy = candidate.build(sc, measure_capacity(sc))
    res = simulate(sc, Arrivals(times, tokens, duration_s, "slice"), policy, seed)
    sim = res.sim
    scored = sim.arr_t >= scored_from_s - 1e-9
    on_time = (sim.status == K.DONE) & ((sim.finish_t - sim.arr_t) * 1e3 <= sc.slo.latency_ms)
    lost = (sim.status == K.DROPPED) | (sim.status == K.TIMED_OUT)
    windows = [w for w in res.windows if w.t0 >= scored_from_s - 1e-9 and w.t1 <= duration_s + 1e-9]
    return {"requests": int(scored.sum()), "on_time": int((on_time & scored).sum()),
            "lost": int((lost & scored).sum()), "cost_usd": float(sum(w.cost_usd for w in windows)),
            "scored_s": float(duration_s - scored_from_s), "scale_actions": int(sum(w.changed for w in windows))}


def _label(task: Task, row: Row) -> Row:
    return {"part": task.slice.part, "slice": task.slice.index, "candidate": task.candidate.name,
            "seed": task.seed, **row}


def run_local(scenario_json: str, tasks: Sequence[Task], tick: Tick | None = None) -> list[Row]:
    """The grid in this process, task by task."""
    rows = []
    for k, t in enumerate(tasks):
        a = t.slice.arrivals
        rows.append(_label(t, evaluate(scenario_json, a.times, a.tokens, a.duration_s, t.slice.scored_from_s,
                                       t.candidate, t.seed)))
        if tick is not None:
            tick(k + 1, len(tasks), rows[-1])
    return rows


def run_ray(scenario_json: str, tasks: Sequence[Task], tick: Tick | None = None) -> list[Row]:
    """The grid as Ray tasks on the Ray this process is connected to; rows in task order."""
    import ray

    remote = ray.remote(num_cpus=1)(evaluate)
    sc_ref = ray.put(scenario_json)
    arr_refs: dict[str, tuple[Any, Any]] = {}
    cand_refs: dict[str, Any] = {}
    pending: dict[Any, int] = {}
    for k, t in enumerate(tasks):
        if t.slice.key not in arr_refs:
            arr_refs[t.slice.key] = (ray.put(t.slice.arrivals.times), ray.put(t.slice.arrivals.tokens))
        if t.candidate.name not in cand_refs:
            cand_refs[t.candidate.name] = ray.put(t.candidate)
        times, tokens = arr_refs[t.slice.key]
        ref = remote.remote(sc_ref, times, tokens, t.slice.arrivals.duration_s, t.slice.scored_from_s,
                            cand_refs[t.candidate.name], t.seed)
        pending[ref] = k
    rows: list[Row | None] = [None] * len(tasks)
    done = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            k = pending.pop(ref)
            rows[k] = _label(tasks[k], ray.get(ref))
            done += 1
            if tick is not None:
                tick(done, len(tasks), rows[k])  # type: ignore[arg-type]
    return [r for r in rows if r is not None]
