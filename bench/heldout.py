"""The held-out benchmark: every case (autotune/benchmark/cases.py) under a set of policies and both oracles.

    .venv/bin/python bench/heldout.py --scenario default                 # the live guards, as autotune control
    .venv/bin/python bench/heldout.py --scenario default --guards none   # the pools' bounds alone

writes ``bench/results/heldout-<scenario>.csv`` (a row per case x policy) and ``.json`` (the summary per
policy, the command, the wall time); with ``--guards none``, ``heldout-<scenario>-noguards.*``. The default
policies: ray-default, ray-tuned (if policies/<scenario>-ray-tuned.json exists), hpa, predictive,
predictive+crowd:3, predictive+hold:3 and the shipped policies/<scenario>.zip (if present).
A run of some of the cases (--family, --case, --duration) is not the benchmark: it needs --out.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # two shared cores: one per process

from autotune.benchmark.cases import Case, cases  # noqa: E402
from autotune.benchmark.heldout import ORACLES, Heldout, Row, default_policies, run_heldout, write  # noqa: E402
from autotune.benchmark.progress import case_bar  # noqa: E402
from autotune.benchmark.results import GUARDS, RESULTS  # noqa: E402
from autotune.cli_common import console, out  # noqa: E402
from autotune.errors import InputError  # noqa: E402
from autotune.scenario import load_scenario  # noqa: E402


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--policy", action="append", help="a policy (repeatable; replaces the default set)")
    ap.add_argument("--guards", choices=GUARDS, default="live",
                    help="live: the controller's guards (the simulator's default); none: the pools' bounds alone")
    ap.add_argument("--family", action="append", help="only the cases of this family (repeatable)")
    ap.add_argument("--case", action="append", help="only this case (repeatable)")
    ap.add_argument("--duration", type=float, help="cut every case to its first S seconds")
    ap.add_argument("--out", help=f"folder for the results (default {RESULTS})")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        import torch  # a trained policy's inference: one thread, the other core is someone else's

        torch.set_num_threads(1)
    except ImportError:
        pass
    try:
        sc = load_scenario(args.scenario)
        todo = cases(sc, args.family)
        if args.case:
            names = {c.name for c in todo}
            if unknown := [n for n in args.case if n not in names]:
                raise InputError("command line", "--case", f"no case {', '.join(unknown)} in scenario {sc.name} "
                                                           f"(cases: {', '.join(sorted(names))})")
            todo = [c for c in todo if c.name in args.case]
        if args.duration is not None:
            todo = [c.cut(args.duration) for c in todo]
        partial = bool(args.family or args.case or args.duration is not None)
        if partial and not args.out:
            raise InputError("command line", "--out", "a run of part of the benchmark must not overwrite its "
                                                      "results: give a folder")
        policies = args.policy or default_policies(sc)
    except InputError as e:
        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 2
    console.print(f"[bold]{sc.name}[/]: {len(todo)} cases x ({len(policies)} policies + {len(ORACLES)} plans), "
                  f"guards {args.guards}")

    def show(case: Case, rows: list[Row]) -> None:
        cells = "  ".join(f"{r['policy']} ${float(r['cost_usd']):.2f} {float(r['slo_attainment']):.2%}"
                          for r in rows)
        console.print(f"{case.name:>18}  {cells}", highlight=False, soft_wrap=True)

    with case_bar(len(todo), len(policies) + len(ORACLES)) as tick:
        result: Heldout = run_heldout(sc, policies, args.guards, todo, progress=tick, on_case=show)
    result.command = shlex.join([".venv/bin/python", "bench/heldout.py", *(sys.argv[1:] if argv is None else argv)])
    csv_path, json_path = write(result, RESULTS if args.out is None else Path(args.out))
    target = sc.slo.target
    out.print(f"{sc.name}, guards {args.guards}: {len(todo)} cases in {result.wall_s:.0f} s; SLO target "
              f"{target:.1%}", highlight=False)
    for p, s in result.summary().items():
        vs = f", {s['cost_vs_ray_default']:.2f}x ray-default" if "cost_vs_ray_default" in s else ""
        out.print(f"{p:>28}: kept {s['kept']}/{s['cases']} ({s['kept_after_warmup']} after the warm-up), "
                  f"{s['kept_where_oracle_startup_keeps']}/{s['oracle_startup_keeps']} where oracle-startup keeps "
                  f"it; ${s['cost_usd']:.2f}{vs}, {s['cost_vs_oracle_where_oracle_keeps']:.2f}x oracle where it "
                  f"keeps", highlight=False)
    console.print(f"wrote {csv_path} and {json_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
