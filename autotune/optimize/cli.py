"""``autotune optimize``; registered into the main CLI by ``register``. Ray and torch load only when it runs."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from autotune.errors import InputError


def _ladder(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError("command line", "--ladder", f"a comma-separated list of surges K (got {text!r})") from None


@contextmanager
def _bar(label: str, total: int) -> Iterator[Callable[[int, str], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autotune.cli_common import console

    with Progress(TextColumn(f"{label:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as prog:
        task = prog.add_task("", total=total)

        def tick(done: int, note: str) -> None:
            prog.update(task, completed=done, description=note)

        yield tick


def _cmd_optimize(args: argparse.Namespace) -> int:
    from autotune.cli_common import console, out, trace_options
    from autotune.optimize import report as R
    from autotune.optimize.run import Options, optimize

    opts = Options(scenario=args.scenario, trace=trace_options(args), prometheus=args.prometheus, app=args.app,
                   last_s=args.last, step_s=args.step,
                   target=args.target, choose_share=args.choose_share, slice_s=args.slice_minutes * 60.0,
                   seeds=args.seeds, ladder=_ladder(args.ladder), also=args.candidate or (), tune=not args.no_tune,
                   tune_trials=args.tune_trials,
                   fine_tune_steps=args.fine_tune_steps, address=args.address, local=args.local, out=args.out,
                   command=shlex.join(["autotune", *sys.argv[1:]]) if sys.argv[1:2] == ["optimize"]
                   else "autotune optimize")
    res = optimize(opts, log=lambda s: console.print(s, highlight=False), bar=_bar)
    out.print(R.rich_table(f"optimize: {res.scenario.name}, target {res.target:.2%} (choose part | report part)",
                           res.choose_part, res.report_part, res.target, res.choice.chosen))
    out.print(f"chosen: {res.choice.chosen} ({res.choice.reason})", highlight=False)
    for c in res.comparisons:
        out.print(f"  report part: {c['cost_ratio']:.2f}x {c['against']}'s cost at {c['chosen_slo']:.3%} SLO "
                  f"(it: {c['against_slo']:.3%})", highlight=False)
    console.print(f"wrote {', '.join(str(p) for p in res.written)} ({res.wall_s:,.0f} s)", highlight=False)
    return 0


def register(sub: Any) -> None:
    from autotune.cli_common import add_trace_options

    p = sub.add_parser("optimize", help="choose the cheapest policy meeting an SLO target on recorded traffic "
                                        "(simulated; choose on the earlier part, report on the later)")
    p.add_argument("--scenario", default="default", help="scenario name (envs/NAME.yaml) or path")
    p.add_argument("--prometheus", metavar="URL", help="read the traffic from a Prometheus server instead of --trace "
                                                       "(the app's Serve request counter; written to OUT/traffic.csv)")
    p.add_argument("--app", help="the Serve application, with --prometheus")
    p.add_argument("--last", type=float, metavar="S",
                   help="with --prometheus: read the last S seconds (default 3600)")
    p.add_argument("--step", type=float, metavar="S",
                   help="with --prometheus: requests counted per S seconds (default: the scenario's control interval)")
    p.add_argument("--target", type=float, help="SLO attainment to meet, in (0, 1] (default: the scenario's)")
    p.add_argument("--choose-share", type=float, default=0.6, help="the earlier share of the traffic to choose on "
                                                                   "(default 0.6); the rest is the report part")
    p.add_argument("--slice-minutes", type=float, default=20.0,
                   help="cut each part into slices of about this long for parallel work (0: one slice a part)")
    p.add_argument("--seeds", type=int, default=2, help="simulator seeds per slice and candidate (default 2)")
    p.add_argument("--ladder", default=",".join(f"{k:g}" for k in (2.0, 3.0)),
                   help="the surges K of the predictive+crowd:K and +hold:K candidates (default 2,3)")
    p.add_argument("--candidate", action="append", metavar="POLICY",
                   help="also evaluate this policy spec or zip (repeatable; named as given in the report)")
    p.add_argument("--no-tune", action="store_true", help="no ray-tuned candidate (skip the Ray Tune sweep)")
    p.add_argument("--tune-trials", type=int, default=8, help="Ray Tune trials for ray-tuned (default 8)")
    p.add_argument("--fine-tune-steps", type=int, default=4096,
                   help="PPO steps fine-tuning the shipped policy on the choose part (0: no fine-tuned candidate)")
    p.add_argument("--address", help="an existing Ray cluster (ray://HOST:10001 or HOST:6379); default a private "
                                     "local Ray")
    p.add_argument("--local", action="store_true", help="run the grid and fine-tuning in this process, without Ray "
                                                        "(the same numbers; re-tuning still uses Ray Tune)")
    p.add_argument("--out", default="optimize-out", help="folder for chosen.json, report.csv, report.md, report.png")
    add_trace_options(p)
    p.set_defaults(func=_cmd_optimize)
