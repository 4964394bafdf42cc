"""``autotune optimize`` as a call: split the traffic, build the candidates (re-tuning and fine-tuning on the
choose part), run the grid, choose on the choose part, report on both, write the outputs."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autotune.errors import InputError
from autotune.fileio import write_text_atomic
from autotune.optimize import grid
from autotune.optimize import report as R
from autotune.optimize.candidates import (
    LADDER,
    Candidate,
    describe,
    ray_candidate,
    rule_candidates,
    spec_candidate,
    zip_candidate,
)
from autotune.optimize.choose import Choice, Figure, choose, figures
from autotune.optimize.promtraffic import LAST_S, PromTraffic, read_traffic
from autotune.optimize.split import LEAD_S, Split, split
from autotune.scenario import Scenario, load_scenario
from autotune.workload.arrivals import Arrivals, TraceOptions, build_arrivals

Log = Callable[[str], None]
BarFactory = Callable[[str, int], AbstractContextManager[Callable[[int, str], None]]]  # (label, total) -> tick
SLICE_S = 1200.0
TUNE_TRIALS = 8


@dataclass
class Options:
    scenario: str = "default"
    trace: TraceOptions = field(default_factory=TraceOptions)
    prometheus: str | None = None
    app: str | None = None
    last_s: float | None = None  # with prometheus: the span read, ending now (default LAST_S)
    step_s: float | None = None  # with prometheus: the counts' bin (default: the scenario's control interval)
    target: float | None = None  # default: the scenario's SLO target
    choose_share: float = 0.6
    slice_s: float = SLICE_S
    lead_s: float = LEAD_S
    seeds: int = 2
    ladder: Sequence[float] = LADDER
    also: Sequence[str] = ()  # more candidates by spec or zip path (the live controller adds its running policy)
    tune: bool = True
    tune_trials: int = TUNE_TRIALS
    fine_tune_steps: int = 4096
    address: str | None = None
    local: bool = False
    out: str = "optimize-out"
    command: str = "autotune optimize"


@dataclass
class Result:
    scenario: Scenario
    split: Split
    candidates: list[Candidate]
    rows: list[dict[str, Any]]
    choose_part: list[Figure]
    report_part: list[Figure]
    choice: Choice
    target: float
    comparisons: list[dict[str, Any]]
    wall_s: float
    written: list[Path]
    traffic: PromTraffic | None = None  # the traffic read from Prometheus, when it was


def _no_bar(label: str, total: int) -> AbstractContextManager[Callable[[int, str], None]]:
    return nullcontext(lambda done, note: None)


def check(opts: Options) -> tuple[Scenario, Arrivals, Split, float, PromTraffic | None]:
    """Every input check, before anything is started or written (the traffic is read from Prometheus here)."""
    if opts.prometheus is not None and opts.trace.trace is not None:
        raise InputError("command line", "--prometheus", "give the traffic either as --trace or from --prometheus")
    if opts.prometheus is None:
        for flag, value in (("--app", opts.app), ("--last", opts.last_s), ("--step", opts.step_s)):
            if value is not None:
                raise InputError("command line", flag, "only with --prometheus")
    if opts.prometheus is None and opts.trace.trace is None:
        raise InputError("command line", "--trace", "required: the recorded traffic to choose on (a trace CSV, or "
                                                    "--prometheus URL --app A)")
    sc = load_scenario(opts.scenario)
    target = sc.slo.target if opts.target is None else opts.target
    if not (0 < target <= 1):
        raise InputError("command line", "--target", f"must be in (0, 1] (got {target:g})")
    if opts.seeds < 1:
        raise InputError("command line", "--seeds", f"must be at least 1 (got {opts.seeds})")
    if opts.slice_s < 0:
        raise InputError("command line", "--slice-minutes", "must be 0 (one slice a part) or positive")
    if opts.tune and opts.tune_trials < 1:
        raise InputError("command line", "--tune-trials", f"must be at least 1 (got {opts.tune_trials})")
    for k in opts.ladder:
        if not 1 <= k <= 100:
            raise InputError("command line", "--ladder", f"every surge K must be within 1..100 (got {k:g})")
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise InputError(out, None, "--out must be a folder")
    from autotune.rl.evaluation import warmup_s

    if opts.fine_tune_steps < 0:
        raise InputError("command line", "--fine-tune-steps", "must be 0 (no fine-tuning) or positive")
    prom: PromTraffic | None = None
    if opts.prometheus is not None:
        prom = read_traffic(opts.prometheus, opts.app, LAST_S if opts.last_s is None else opts.last_s,
                            sc.control_interval_s if opts.step_s is None else opts.step_s)
        source = prom.source
        # Replayed as the same rate trace given with --trace (the trace options apply to it alike); the file is
        # written to --out with the other outputs, once every check has passed.
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "traffic.csv"
            csv.write_text(prom.csv_text())
            arr = replace(build_arrivals(sc, 0, replace(opts.trace, trace=str(csv))), source=source)
    else:
        source = str(opts.trace.trace)
        arr = build_arrivals(sc, 0, opts.trace)
    if len(arr) == 0:
        raise InputError(source, "workload", "no arrivals in the selected span")
    sp = split(arr, opts.choose_share, opts.slice_s, sc.control_interval_s, warmup_s(sc), opts.lead_s,
               source=source)
    return sc, arr, sp, target, prom


def given_candidates(sc: Scenario, specs: Sequence[str], known: set[str]) -> list[Candidate]:
    """``--candidate`` specs and zips, each named as given (so a caller finds its row); a bad one is a one-line
    error naming it."""
    from autotune.registry import make_policy

    out: list[Candidate] = []
    for spec in specs:
        if spec in known or spec in {c.name for c in out}:
            continue
        if spec.endswith(".zip"):
            path = Path(spec)
            if not path.exists() or not path.with_suffix(".json").exists():
                raise InputError("command line", "--candidate", f"{spec}: no such policy zip with its card")
            out.append(zip_candidate(spec, path, "given on the command line"))
            continue
        try:
            make_policy(spec, sc)  # an unknown or malformed spec fails here, before any work
        except InputError as e:
            raise InputError("command line", "--candidate", f"{spec}: {e.problem}") from None
        out.append(spec_candidate(spec, "given on the command line"))
    return out


def optimize(opts: Options, log: Log = print, bar: BarFactory = _no_bar) -> Result:
    t0 = time.monotonic()
    sc, arr, sp, target, prom = check(opts)
    cands = rule_candidates(sc, opts.ladder)
    cands += given_candidates(sc, opts.also, {c.name for c in cands})
    shipped = next((c for c in cands if c.kind == "zip"), None)
    steps = opts.fine_tune_steps if shipped is not None else 0
    if steps:
        from autotune.optimize.finetune import min_steps

        assert shipped is not None
        if steps < (least := min_steps(shipped.card_text)):
            raise InputError("command line", "--fine-tune-steps", f"must be 0 or at least one PPO update of "
                                                                  f"{least} steps (got {steps})")
    if opts.fine_tune_steps and shipped is None:
        log(f"no shipped policies/{sc.name}.zip: no fine-tuned candidate")
    log(f"{sc.name}: {len(arr):,} requests over {arr.duration_s:,.0f} s from {arr.source}; choosing on the first "
        f"{sp.boundary_s:,.0f} s ({len(sp.of('choose'))} slices), reporting on the last "
        f"{arr.duration_s - sp.boundary_s:,.0f} s ({len(sp.of('report'))} slices)")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    use_ray = not opts.local or opts.tune
    started_ray = False
    if use_ray:
        import ray

        from autotune.rl.tune import _init_ray

        started_ray = not ray.is_initialized()
        _init_ray(opts.address, 2)
    try:
        extra = _tuned_candidates(opts, sc, sp, shipped, steps, log, bar)
        cands += extra
        log(f"{len(cands)} candidates: {', '.join(c.name for c in cands)}")
        seeds = list(range(opts.seeds))
        # Trained policies are the slowest to simulate: start them first so the last tasks are short ones.
        order = sorted(cands, key=lambda c: c.kind != "zip")
        tasks = grid.tasks_for(sp.slices, order, seeds)
        sc_json = sc.model_dump_json()
        with bar(f"grid ({len(tasks)} simulations)", len(tasks)) as tick:
            def on_done(done: int, total: int, row: dict[str, Any]) -> None:
                tick(done, f"{row['candidate']} on {row['part']}-{row['slice']} seed {row['seed']}")

            rows = (grid.run_local if opts.local else grid.run_ray)(sc_json, tasks, on_done)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    names = [c.name for c in cands]
    choose_part, report_part = figures(rows, names, "choose"), figures(rows, names, "report")
    choice = choose(choose_part, target)
    comparisons = [c for c in (R.compare(report_part, choice.chosen, a) for a in ("shipped", "ray-default")
                               if a != choice.chosen) if c is not None]
    wall = time.monotonic() - t0
    res = Result(sc, sp, cands, rows, choose_part, report_part, choice, target, comparisons, wall, [], prom)
    res.written = write_outputs(res, opts, arr)
    return res


def _episodes(sp: Split) -> list[Any]:
    from autotune.rl.evaluation import EvalEpisode

    return [EvalEpisode(s.key, s.arrivals, 0) for s in sp.of("choose")]


def _tuned_candidates(opts: Options, sc: Scenario, sp: Split, shipped: Candidate | None, steps: int, log: Log,
                      bar: BarFactory) -> list[Candidate]:
    """``ray-tuned`` (Ray Tune on the choose part's slices) and ``fine-tuned`` (PPO from the shipped policy on the
    choose part), both on the choose part only. On Ray the fine-tuning is a task running beside the sweep."""
    out: list[Candidate] = []
    ft_ref: Any = None
    ft_args: tuple[Any, ...] = ()
    if steps:
        assert shipped is not None
        ft_args = (sc.model_dump_json(), shipped, sp.choose.times, sp.choose.tokens, sp.choose.duration_s,
                   sp.choose.source, [(s.key, s.arrivals.times, s.arrivals.tokens, s.arrivals.duration_s)
                                      for s in sp.of("choose")], steps, 0, opts.command)
        if not opts.local:
            import ray

            from autotune.optimize.finetune import fine_tune

            log(f"fine-tuning the shipped policy for {steps:,} steps on the choose part (a Ray task)")
            ft_ref = ray.remote(num_cpus=1)(fine_tune).remote(*ft_args)
    if opts.tune:
        from autotune.rl.tune import tune_ray_baseline

        log(f"re-tuning ray-default's knobs on the choose part: {opts.tune_trials} trials (Ray Tune, ASHA)")
        with tempfile.TemporaryDirectory() as tmp:
            data = tune_ray_baseline(sc, opts.tune_trials, address=opts.address, log=log,
                                     out=Path(tmp) / "ray-tuned.json", concurrent=1 if ft_ref is not None else 2,
                                     episodes=_episodes(sp))
        out.append(ray_candidate("ray-tuned", data["ray_autoscaler"],
                                 f"Ray Serve's autoscaler re-tuned on the choose part ({opts.tune_trials} trials, "
                                 f"score {data['score']:.3f} against ray-default's {data['ray_default_score']:.3f})"))
    if steps:
        from autotune.optimize.finetune import fine_tune

        t0 = time.monotonic()
        if ft_ref is not None:
            import ray

            with bar("fine-tuning (Ray task)", 1) as tick:
                zip_bytes, card_text = ray.get(ft_ref)
                tick(1, "done")
        else:
            with bar(f"fine-tuning ({steps:,} steps)", steps) as tick:
                zip_bytes, card_text = fine_tune(*ft_args, tick=lambda done, total: tick(done, "steps"))
        card = json.loads(card_text)
        kept = card["selection"].get("kept")
        log(f"fine-tuned in {time.monotonic() - t0:,.0f} s (selection {'kept' if kept else 'did not keep'} the "
            f"shipped policy's SLO on every choose slice)")
        out.append(Candidate("fine-tuned", "zip", spec="fine-tuned.zip", zip_bytes=zip_bytes, card_text=card_text,
                             origin=f"the shipped policy trained {steps:,} more PPO steps on the choose part"))
    return out


def write_outputs(res: Result, opts: Options, arr: Arrivals) -> list[Path]:
    out = Path(opts.out)
    written: list[Path] = []
    if res.traffic is not None:
        write_text_atomic(out / "traffic.csv", res.traffic.csv_text())
        written.append(out / "traffic.csv")
    cand = next(c for c in res.candidates if c.name == res.choice.chosen)
    fig = {f.part: f for f in (*res.choose_part, *res.report_part) if f.candidate == cand.name}
    chosen: dict[str, Any] = {"chosen": cand.name, **describe(cand), "met_target_on_choose_part": res.choice.met,
                              "reason": res.choice.reason, "target": res.target, "scenario": res.scenario.name}
    if cand.kind == "zip" and cand.name == "fine-tuned":
        z = out / "fine-tuned.zip"
        from autotune.fileio import atomic_path

        with atomic_path(z) as tmp:
            tmp.write_bytes(cand.zip_bytes)
        write_text_atomic(z.with_suffix(".json"), cand.card_text)
        written += [z, z.with_suffix(".json")]
        chosen["policy"] = str(z)
    elif cand.kind == "zip":
        chosen["policy"] = cand.spec
    elif cand.kind == "ray":
        ray_file = out / "ray-tuned.json"
        write_text_atomic(ray_file, json.dumps({"ray_autoscaler": cand.ray_autoscaler, "scenario": res.scenario.name,
                                                "origin": cand.origin}, indent=2) + "\n")
        written.append(ray_file)
        chosen["policy"] = f"ray-tuned (the ray_autoscaler settings here; as a file: {ray_file})"
    else:
        chosen["policy"] = cand.spec
    chosen["choose_part"] = _fig_json(fig.get("choose"), res.target)
    chosen["report_part"] = _fig_json(fig.get("report"), res.target)
    chosen["report_part_comparisons"] = res.comparisons
    chosen["split"] = {"trace": arr.source, "duration_s": arr.duration_s, "boundary_s": res.split.boundary_s,
                       "choose_share": opts.choose_share, "slice_s": opts.slice_s, "lead_s": opts.lead_s,
                       "seeds": opts.seeds}
    if res.traffic is not None:
        chosen["traffic"] = res.traffic.as_json(str(out / "traffic.csv"))
    chosen["command"] = opts.command
    chosen["wall_time_s"] = round(res.wall_s, 1)
    write_text_atomic(out / "chosen.json", json.dumps(chosen, indent=2, allow_nan=True) + "\n")
    table = R.rows([*res.choose_part, *res.report_part], res.target, cand.name)
    R.write_csv(out / "report.csv", table)
    header = {"scenario": res.scenario.name, "trace": arr.source}
    if res.traffic is not None:
        header["trace"] = (f"{arr.source}: {res.traffic.requests:,} requests in steps of {res.traffic.step_s:g} s "
                           f"to {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(res.traffic.end))}, "
                           f"written to {out / 'traffic.csv'} (`--trace` replays it)")
    header |= {"traffic": f"{len(arr):,} requests over {arr.duration_s:,.0f} s",
               "split": f"choose on [0, {res.split.boundary_s:,.0f}) s, report on [{res.split.boundary_s:,.0f}, "
                        f"{arr.duration_s:,.0f}) s; slices of about {opts.slice_s:,.0f} s with {opts.lead_s:,.0f} s "
                        f"lead-ins (simulated, not scored)",
               "target": f"{res.target:.2%} of requests within {res.scenario.slo.latency_ms:g} ms",
               "seeds": f"{opts.seeds} simulator seeds (cost: mean per seed; SLO: over every scored request)",
               "command": f"`{opts.command}`"}
    R.write_markdown(out / "report.md", R.markdown(header, [describe(c) for c in res.candidates], res.choose_part,
                                                   res.report_part, res.choice, res.target, res.comparisons))
    R.plot(out / "report.png", res.choose_part, res.report_part, res.target, cand.name,
           f"{res.scenario.name}: cost vs SLO attainment (chosen: {cand.name})")
    return [*written, out / "chosen.json", out / "report.csv", out / "report.md", out / "report.png"]


def _fig_json(f: Figure | None, target: float) -> dict[str, Any] | None:
    if f is None:
        return None
    return {"cost_usd": f.cost_usd, "usd_per_hour": f.usd_per_hour, "slo_attainment": f.slo_attainment,
            "requests": f.requests, "lost": f.lost, "seeds": f.seeds,
            "meets_target": f.meets(target)}
