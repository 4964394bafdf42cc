"""``autotune``: the command line. Subcommands of other parts plug in via ``register``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autotune.cli_common import add_trace_options, console, out
from autotune.errors import InputError

# Each module has register(subparsers) and must not import torch or ray at import time.
PLUGINS = ("autotune.rl.cli", "autotune.live.cli", "autotune.optimize.cli", "autotune.calibrate.cli",
           "autotune.profile_model")


def _cmd_whatif(args: argparse.Namespace) -> int:
    from autotune import whatif
    from autotune.scenario import Scenario
    from autotune.sim.run import SUMMARY_COLUMNS
    from autotune.workload.arrivals import Arrivals

    prog = Progress(TextColumn("{task.description:>14}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                    TimeElapsedColumn(), console=console, transient=True)
    tasks: dict[str, int] = {}
    started = False

    def announce(scenario: Scenario, arrivals: Arrivals) -> None:
        # Once the input has passed every check, before the bars start: a bad trace or scenario is the one line
        # of its error and nothing else (a stopped Progress prints a newline on a non-terminal, even unstarted).
        nonlocal started
        console.print(f"[bold]{scenario.name}[/]: {len(arrivals):,} requests over {arrivals.duration_s:,.0f} s "
                      f"({arrivals.mean_rate:,.1f} req/s mean) from {arrivals.source}")
        prog.start()
        started = True

    def progress(name: str, frac: float) -> None:
        if name not in tasks:
            tasks[name] = prog.add_task(name, total=1.0)
        prog.update(tasks[name], completed=frac)

    try:
        result = whatif.run(args.scenario, args.policy, seed=args.seed, trace=args.trace, mean_rate=args.mean_rate,
                            duration=args.duration, time_scale=args.time_scale, rate_scale=args.rate_scale,
                            instance=args.instance, insure=args.insure, progress=progress, on_arrivals=announce)
    finally:
        if started:
            prog.stop()
    scenario = result.scenario
    table = Table(title=f"what-if: {scenario.name} (SLO {scenario.slo.latency_ms:g} ms, "
                        f"target {scenario.slo.target:.1%}); oracle is a clairvoyant bound, "
                        "oracle-startup the same paying start-up delays"
                        + (", oracle+crowd:K the bound insured for a K x surge" if len(result.results)
                           > result.n_policies + 2 else ""))
    for c in SUMMARY_COLUMNS:
        table.add_column(c, justify="left" if c == "policy" else "right")
    for row in result.rows():
        table.add_row(*[_cell(c, row[c]) for c in SUMMARY_COLUMNS])
    out.print(table)
    out.print(result.verdict(), highlight=False)
    if args.out:
        result.write_csv(args.out)
        console.print(f"wrote {args.out}")
    if args.plot:
        result.plot(args.plot)
        console.print(f"wrote {args.plot}")
    if args.records:
        files = result.write_records(args.records)
        console.print(f"wrote {len(files)} record files to {args.records}")
    return 0


def _cell(col: str, v: object) -> str:
    if col == "slo_attainment" and isinstance(v, float):
        return f"{v:.2%}"
    if isinstance(v, float):
        return f"{v:,.2f}" if col != "gpu_hours" else f"{v:,.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from autotune.scenario import load_scenario, scenario_names

    table = Table(title="scenarios (envs/)")
    for c in ("name", "model", "pools", "SLO", "load", "description"):
        table.add_column(c)
    for name in scenario_names():
        sc = load_scenario(name)
        pools = ", ".join(f"{p.name}:{p.instance}{' spot' if p.spot else ''} [{p.min_replicas}-{p.max_replicas}]"
                          for p in sc.pools)
        w = sc.workload
        load = (f"{w.generator} {w.mean_rate:g} req/s" if w.kind == "synthetic"
                else f"{w.trace}" + (f" @ {w.mean_rate:g} req/s" if w.mean_rate else ""))
        table.add_row(name, sc.model, pools, f"{sc.slo.latency_ms:g} ms @ {sc.slo.target:.0%}", load, sc.description)
    out.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("whatif", help="compare policies on the same arrivals (plus the oracle bound)")
    p.add_argument("--scenario", default="default", help="scenario name (envs/NAME.yaml) or path")
    p.add_argument("--policy", action="append",
                   help="policy: static[:N], ray-default, ray-tuned, hpa, headroom[:M], burst[:M], predictive[:M], "
                        "or a .zip; POLICY+crowd:K never holds less than a K x surge of the calm load needs, "
                        "POLICY+hold:K holds that and no more while it carries the load "
                        "(repeatable; default: static, ray-default, hpa, predictive and the shipped "
                        "policies/SCENARIO.zip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--instance", help="run every pool on this GPU type instead (T4, L4, A10G, A100, H100)")
    p.add_argument("--insure", type=float, metavar="K",
                   help="also plan oracle+crowd:K, the oracle never holding less than a K x surge of the calm load "
                        "needs: what insuring against that surprise costs in hindsight (default: the largest K of "
                        "the POLICY+crowd:K or POLICY+hold:K asked for; 0: none)")
    p.add_argument("--out", help="CSV file, one row per policy plus oracle-startup, oracle and oracle+crowd:K")
    p.add_argument("--plot", help="PNG file: load, replicas by pool and latency over time")
    p.add_argument("--records", metavar="DIR", help="write per-request and per-window CSVs for each policy")
    add_trace_options(p)
    p.set_defaults(func=_cmd_whatif)
    p = sub.add_parser("scenarios", help="list the scenarios with pools, SLO and nominal load")
    p.set_defaults(func=_cmd_scenarios)
    for mod in PLUGINS:
        try:
            plugin = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name is not None and mod.startswith(e.name):
                continue  # that part of autotune is not present in this checkout
            raise
        plugin.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as e:
        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
