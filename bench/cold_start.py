"""Which held-out cases any causal policy can keep from a cold start, and which policies keep them.

Every ``autotune whatif`` run starts from the scenario's initial fleet. The
oracle of the issue's "reachable" knows the arrivals from the first second; a
policy first decides after one control window, and what it asks for then is
ready a start-up later. ``autotune.causal.cold_start_best`` runs the strongest
answers at that first decision (every pool of one GPU type to its quota, for
each type, or every pool), so where the best of them misses the target, no
causal policy keeps it from a cold start. For each ``bench/rl_eval.py`` case:
the oracle's SLO, that ceiling, and the SLO of each policy whose rl_eval results
are given (``--results``, the CSVs ``bench/rl_eval.py`` writes).

    .venv/bin/python bench/cold_start.py --scenario default \\
        --results bench/results/rl_eval-default-predictive+crowd_2.5.csv --results bench/results/rl_eval-default.csv

writes ``bench/results/cold_start-<scenario>.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from rl_eval import cases

from autotune.causal import cold_start_best
from autotune.paths import ROOT
from autotune.scenario import load_scenario
from autotune.workload.arrivals import build_arrivals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--results", action="append", default=[], help="an rl_eval CSV (repeatable)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    sc0 = load_scenario(args.scenario)
    target = sc0.slo.target
    # rl_eval-default.csv is the shipped policy's; rl_eval-default-RULE.csv a rule's (":" written as "_")
    results = {(Path(p).stem.removeprefix(f"rl_eval-{sc0.name}").removeprefix("-") or "shipped"):
               {r["case"]: r for r in csv.DictReader(open(p))} for p in args.results}
    rows: list[dict[str, float | str]] = []
    print(f"{'case':>22} {'oracle':>8} {'cold-start ceiling':>19}  " + "  ".join(f"{k:>22}" for k in results))
    for case in cases(sc0, False):
        row: dict[str, float | str] = {"case": case.name}
        if results:  # every rl_eval file has the same oracle run for a case
            row["oracle_slo"] = float(next(iter(results.values()))[case.name]["oracle_slo"])
        row["cold_start_ceiling"] = cold_start_best(case.scenario, build_arrivals(case.scenario, case.seed,
                                                                                  case.options), case.seed)
        for k, v in results.items():
            row[f"{k}_slo"] = float(v[case.name]["rl_slo"])
        rows.append(row)
        cells = "  ".join(f"{float(row[f'{k}_slo']):22.2%}" for k in results)
        print(f"{case.name:>22} {float(row.get('oracle_slo', float('nan'))):8.2%} "
              f"{float(row['cold_start_ceiling']):19.2%}  {cells}", flush=True)
    summary: dict[str, float] = {}
    if results:
        reach = [r for r in rows if float(r["oracle_slo"]) >= target]
        cold = [r for r in reach if float(r["cold_start_ceiling"]) >= target]
        summary = {"oracle_reachable": len(reach), "also_from_a_cold_start": len(cold)}
        print(f"\nreachable by the oracle: {len(reach)}; of them by a causal policy from a cold start: {len(cold)}")
        for k in results:
            kept = sum(1 for r in cold if float(r[f"{k}_slo"]) >= target)
            summary[f"{k}_keeps"] = kept
            print(f"  {k}: keeps {kept} of those {len(cold)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"cold_start-{sc0.name}.json"
    path.write_text(json.dumps({"command": " ".join(["bench/cold_start.py", *(argv or sys.argv[1:])]),
                                "rows": rows, "summary": summary, "seconds": time.monotonic() - t_start}, indent=1))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
