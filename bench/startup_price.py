"""How much of a policy's cost above the oracle is start-up delay, and how much is not knowing the future.

The ``oracle`` bound of ``autotune whatif`` (and of the issue's 1.15x target)
knows the future *and* starts replicas instantly. ``oracle-startup`` knows the
same future but pays the pools' real start-up delays (node provisioning plus
model load) and starts from the scenario's initial fleet, as every real policy
does (``make_oracle(..., start_up=True)``). Each case is one ``autotune whatif``
run of ``bench/rl_eval.py``; over the cases where the oracle keeps the SLO:

    policy / oracle = (oracle-startup / oracle) x (policy / oracle-startup)
                       price of start-up delays    price of not knowing the future

    .venv/bin/python bench/startup_price.py --scenario default --policy predictive --policy policies/default.zip

writes ``bench/results/startup_price-<scenario>.csv`` / ``.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rl_eval import Case, cases

from autotune.paths import ROOT
from autotune.rl.evaluation import WARMUP_S, slo_after
from autotune.scenario import Scenario, load_scenario
from autotune.sim.run import SimResult
from autotune.whatif import WhatIf, run_whatif


def cells(key: str, res: SimResult) -> dict[str, float]:
    s = res.summary()
    return {f"{key}_cost": float(s["cost_usd"]), f"{key}_slo": float(s["slo_attainment"]),
            f"{key}_slo_warm": slo_after(res, WARMUP_S)}


def summarize(rows: list[dict[str, float | str]], keys: list[str], target: float) -> dict[str, float]:
    reach = [r for r in rows if float(r["oracle_slo"]) >= target]

    def tot(k: str) -> float:
        return float(sum(float(r[f"{k}_cost"]) for r in reach))

    s: dict[str, float] = {"cases": len(rows), "oracle_reachable_cases": len(reach),
                           "startup_keeps_slo_where_reachable": sum(float(r["oracle-startup_slo"]) >= target
                                                                    for r in reach),
                           "oracle-startup_vs_oracle": tot("oracle-startup") / tot("oracle")}
    for k in keys:
        s[f"{k}_vs_oracle"] = tot(k) / tot("oracle")
        s[f"{k}_vs_oracle-startup"] = tot(k) / tot("oracle-startup")
        s[f"{k}_meets_slo_where_reachable"] = sum(float(r[f"{k}_slo"]) >= target for r in reach)
    return s


Extra = Callable[[Case, WhatIf], dict[str, float]]


def priced_rows(sc: Scenario, keys: list[str], quick: bool, extra: Extra | None = None,
                shown: list[str] | None = None) -> list[dict[str, float | str]]:
    """One row per ``bench/rl_eval.py`` case: cost and SLO of each policy and of both oracles, plus ``extra``'s."""
    rows: list[dict[str, float | str]] = []
    for case in cases(sc, quick):
        res = run_whatif(case.scenario, keys, case.seed, options=case.options)  # the policies, then both bounds
        row: dict[str, float | str] = {"case": case.name}
        for key, sim_result in zip([*keys, "oracle-startup", "oracle"], res.results, strict=True):
            row |= cells(key, sim_result)
        if extra is not None:
            row |= extra(case, res)
        rows.append(row)
        print(f"{case.name:>22}  " + "  ".join(f"{k}: ${float(row[f'{k}_cost']):6.2f} {float(row[f'{k}_slo']):7.2%}"
                                             for k in (shown or ["oracle", "oracle-startup", *keys])), flush=True)
    return rows


def save(out_dir: str, stem: str, rows: list[dict[str, float | str]], meta: dict[str, object]) -> None:
    """``stem``.csv (the rows) and ``stem``.json (``meta`` and the rows) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{stem}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / f"{stem}.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out / stem}.csv and .json", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--policy", action="append", default=[], help="policy name or zip (repeatable)")
    ap.add_argument("--quick", action="store_true", help="fewer cases")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sc = load_scenario(args.scenario)
    t0 = time.monotonic()
    rows = priced_rows(sc, args.policy, args.quick)
    summary = summarize(rows, args.policy, sc.slo.target)
    summary["wall_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(summary, indent=2))
    save(args.out, f"startup_price-{sc.name}{'-quick' if args.quick else ''}", rows,
         {"scenario": sc.name, "policies": args.policy, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
