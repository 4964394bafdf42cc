"""How cheap can a fixed-headroom rule meet the SLO, if the headroom is chosen in hindsight?

For every case of ``bench/rl_eval.py`` (same arrivals, same cluster RNG) this
runs ``headroom:M`` (hold M x the replicas the forecast load needs, by SLO
capacity, on the cheapest pool) for M on a grid, then reports per case the
cheapest M that meets the SLO target (over all requests, and after the 5-min
warm-up that every run from the small initial fleet needs at high load), its
cost against the oracle and, for
reference, the trained policy's row from ``bench/results/rl_eval-SCENARIO.json``.

Picking M per case after seeing the case is not a causal policy: it bounds
what any *reactive* rule of this family (RL included, which starts from it)
can reach without forecasting, against the clairvoyant oracle that pre-starts
replicas 145 s ahead of a burst.

    .venv/bin/python bench/headroom_bound.py --scenario default [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from rl_eval import cases  # type: ignore[import-not-found]  # bench/ is the script's directory

from autotune.paths import ROOT
from autotune.rl.evaluation import WARMUP_S, slo_after
from autotune.scenario import load_scenario
from autotune.whatif import run_whatif

GRID = (1.0, 1.1, 1.2, 1.3, 1.45, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0, 6.0)


def _no_nan(x: object) -> object:
    """JSON has no NaN: None instead."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_no_nan(v) for v in x]
    return x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args(argv)
    sc = load_scenario(a.scenario)
    target = sc.slo.target
    rl_file = Path(a.out) / f"rl_eval-{sc.name}.json"
    rl_rows = {r["case"]: r for r in json.loads(rl_file.read_text())["rows"]} if rl_file.exists() else {}
    rows = []
    t0 = time.monotonic()
    for case in cases(sc, quick=False):
        res = run_whatif(case.scenario, [f"headroom:{m:g}" for m in GRID], case.seed, options=case.options)
        summ = [r.summary() for r in res.results]
        oracle = summ[-1]
        grid = [(m, float(s["cost_usd"]), float(s["slo_attainment"]), slo_after(r, WARMUP_S))
                for m, s, r in zip(GRID, summ, res.results, strict=False)]
        ok = [g for g in grid if g[2] >= target]
        best = min(ok, key=lambda g: g[1]) if ok else None
        ok_warm = [g for g in grid if g[3] >= target]
        warm = min(ok_warm, key=lambda g: g[1]) if ok_warm else None
        rl = rl_rows.get(case.name, {})
        row = {"case": case.name, "oracle_cost": float(oracle["cost_usd"]),
               "oracle_slo": float(oracle["slo_attainment"]),
               "best_m": best[0] if best else math.nan, "best_cost": best[1] if best else math.nan,
               "best_slo": best[2] if best else math.nan,
               "best_vs_oracle": best[1] / float(oracle["cost_usd"]) if best else math.nan,
               "best_m_after_warmup": warm[0] if warm else math.nan,
               "best_vs_oracle_after_warmup": warm[1] / float(oracle["cost_usd"]) if warm else math.nan,
               "rl_cost": rl.get("rl_cost", math.nan), "rl_slo": rl.get("rl_slo", math.nan),
               "grid": [{"m": m, "cost": c, "slo": s, "slo_after_warmup": w} for m, c, s, w in grid]}
        rows.append(row)
        print(f"{case.name:>22}  oracle ${row['oracle_cost']:6.2f} {row['oracle_slo']:7.2%}   "
              + (f"cheapest M meeting {target:.0%}: {best[0]:g} ${best[1]:6.2f} = {row['best_vs_oracle']:.2f}x oracle"
                 if best else f"no M up to {GRID[-1]:g} meets {target:.0%}")
              + (f"; after warm-up M {warm[0]:g} = {row['best_vs_oracle_after_warmup']:.2f}x" if warm else
                 "; after warm-up none"), flush=True)
    reachable = [r for r in rows if r["oracle_slo"] >= target]
    met = [r for r in reachable if not math.isnan(r["best_cost"])]
    summary = {
        "cases": len(rows), "oracle_reachable_cases": len(reachable),
        "reachable_cases_some_M_meets": len(met),
        "hindsight_cost_vs_oracle_on_those": (sum(r["best_cost"] for r in met) / sum(r["oracle_cost"] for r in met)
                                              if met else math.nan),
        "cases_within_1_15x_oracle": sum(1 for r in met if r["best_vs_oracle"] <= 1.15),
        "reachable_cases_some_M_meets_after_warmup": sum(1 for r in reachable
                                                         if not math.isnan(r["best_m_after_warmup"])),
        "cases_within_1_15x_oracle_after_warmup": sum(1 for r in reachable
                                                      if r["best_vs_oracle_after_warmup"] <= 1.15),
        "wall_s": round(time.monotonic() - t0, 1),
    }
    print(json.dumps(summary, indent=2))
    out = Path(a.out) / f"headroom_bound-{sc.name}.json"
    doc = {"scenario": sc.name, "grid": list(GRID), "summary": summary, "rows": rows}
    out.write_text(json.dumps(_no_nan(doc), indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
