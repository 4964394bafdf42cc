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
from pathlib import Path

import torch
from rl_eval import cases

from autotune.paths import ROOT
from autotune.rl.evaluation import WARMUP_S, slo_after
from autotune.scenario import load_scenario
from autotune.sim.run import SimResult
from autotune.whatif import run_whatif


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--policy", action="append", default=[], help="policy name or zip (repeatable)")
    ap.add_argument("--quick", action="store_true", help="fewer cases")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sc = load_scenario(args.scenario)
    keys = args.policy
    rows: list[dict[str, float | str]] = []
    t0 = time.monotonic()
    for case in cases(sc, args.quick):
        res = run_whatif(case.scenario, keys, case.seed, options=case.options)  # the policies, then both bounds
        row: dict[str, float | str] = {"case": case.name}
        for key, sim_result in zip([*keys, "oracle-startup", "oracle"], res.results, strict=True):
            row |= cells(key, sim_result)
        rows.append(row)
        print(f"{case.name:>22}  " + "  ".join(f"{k}: ${float(row[f'{k}_cost']):6.2f} {float(row[f'{k}_slo']):7.2%}"
                                             for k in ["oracle", "oracle-startup", *keys]), flush=True)
    summary = summarize(rows, keys, sc.slo.target)
    summary["wall_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(summary, indent=2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"startup_price-{sc.name}{'-quick' if args.quick else ''}"
    with open(out / f"{stem}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / f"{stem}.json").write_text(json.dumps({"scenario": sc.name, "policies": keys, "summary": summary,
                                                 "rows": rows}, indent=2) + "\n")
    print(f"wrote {out / stem}.csv and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
