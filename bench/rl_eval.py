"""Benchmark trained RL policies against the baselines on arrivals training never saw.

Every case is one ``autotune whatif`` run (same arrivals and cluster RNG for
every policy, plus the two oracle bounds): the scenario's own workload on held-out
seeds, the other generators on held-out seeds, and the Azure traces (never
trained on) and NASA day 0 (held out) rescaled to several mean rates.

    .venv/bin/python bench/rl_eval.py --scenario default [--quick] [--out bench/results]

prints one row per case and a summary against the issue's targets, and writes
``rl_eval-<scenario>.csv`` / ``.json``. The trace cases are plain
``autotune whatif`` commands (printed in the JSON); generator cases use the
scenario with its workload's generator swapped (``variant`` column).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from autotune.paths import POLICIES, ROOT
from autotune.registry import make_policy, ray_tuned_path
from autotune.rl.evaluation import MMPP_PARAMS, WARMUP_S, slo_after
from autotune.scenario import Scenario, WorkloadSpec, load_scenario
from autotune.whatif import run_whatif
from autotune.workload.arrivals import TraceOptions

RATES = (10.0, 100.0, 300.0, 1000.0)
TRACES = {"azure-conv": ("traces/azure_llm_conv_2023.csv", 1.0), "azure-code": ("traces/azure_llm_code_2023.csv", 1.0),
          "nasa-day0": ("traces/nasa_http_1995_per_minute.csv", 1 / 24)}
GENERATOR_PARAMS = {"poisson": {}, "daily": {"amplitude": 0.6, "period_s": 3600.0},
                    "mmpp": MMPP_PARAMS,  # the validation's MMPP shape too
                    "flash": {"spike_factor": 3.0, "ramp_s": 60.0, "spike_duration_s": 300.0},
                    "ramp": {"spread": 0.8}}


@dataclass(frozen=True)
class Case:
    name: str
    scenario: Scenario
    seed: int
    options: TraceOptions | None
    command: str


def cases(sc: Scenario, quick: bool) -> list[Case]:
    pol = f"--policy policies/{sc.name}.zip --policy ray-default --policy ray-tuned --policy hpa"
    out: list[Case] = []
    seeds = range(2 if quick else 3)
    for s in seeds:
        out.append(Case(f"own-seed{s}", sc, s, None, f"autotune whatif --scenario {sc.name} {pol} --seed {s}"))
    for gen, params in GENERATOR_PARAMS.items():
        if gen == sc.workload.generator:
            continue
        for s in range(1):
            for rate in ((300.0,) if quick else (30.0, 300.0)):
                spec = WorkloadSpec(kind="synthetic", generator=gen, mean_rate=rate, duration_s=3600.0, params=params)
                variant = sc.model_copy(update={"workload": spec})
                how = f"(scenario {sc.name} with workload {spec.model_dump(exclude_defaults=True)}) --seed {s}"
                out.append(Case(f"{gen}@{rate:g}-seed{s}", variant, s, None, how))
    for tname, (path, scale) in TRACES.items():
        for rate in ((100.0, 1000.0) if quick else RATES):
            opts = TraceOptions(trace=path, mean_rate=rate, time_scale=scale, duration_s=3600.0)
            out.append(Case(f"{tname}@{rate:g}", sc, 0, opts,
                            f"autotune whatif --scenario {sc.name} {pol} --trace {path} --time-scale {scale:.6g} "
                            f"--duration 3600 --mean-rate {rate:g}"))
    return out


def run_case(case: Case, policy_zip: Path, baselines: list[str]) -> dict[str, float | str]:
    pols = [make_policy(str(policy_zip), case.scenario)] + [make_policy(b, case.scenario) for b in baselines]
    res = run_whatif(case.scenario, pols, case.seed, options=case.options)
    out: dict[str, float | str] = {"case": case.name, "requests": float(res.rows()[0]["requests"])}
    for sim_result in res.results:
        r = sim_result.summary()
        key = "rl" if r["policy"] == pols[0].name else str(r["policy"])
        out[f"{key}_cost"] = float(r["cost_usd"])
        out[f"{key}_slo"] = float(r["slo_attainment"])
        out[f"{key}_slo_warm"] = slo_after(sim_result, WARMUP_S)
    out["command"] = case.command
    return out


def summarize(rows: list[dict[str, float | str]], target: float, baselines: list[str]) -> dict[str, float]:
    def tot(k: str) -> float:
        return float(sum(float(r[k]) for r in rows))

    reachable = [r for r in rows if float(r["oracle_slo"]) >= target]
    early = [r for r in rows if float(r["oracle-startup_slo"]) >= target]
    s: dict[str, float] = {
        "cases": len(rows),
        "oracle_reachable_cases": len(reachable),
        "rl_meets_slo_where_reachable": sum(1 for r in reachable if float(r["rl_slo"]) >= target),
        "rl_cost_vs_oracle": tot("rl_cost") / tot("oracle_cost"),
        # The 1.15x is at a kept SLO: where the oracle itself misses, its cost bounds nothing.
        "rl_cost_vs_oracle_where_reachable": (sum(float(r["rl_cost"]) for r in reachable)
                                              / max(sum(float(r["oracle_cost"]) for r in reachable), 1e-9)),
        # What no forecast saves: the same foresight paying the real start-up delays (bench/startup_price.py).
        "rl_cost_vs_oracle-startup_where_reachable": (sum(float(r["rl_cost"]) for r in reachable)
                                                      / max(sum(float(r["oracle-startup_cost"]) for r in reachable),
                                                            1e-9)),
        "rl_worst_slo": min(float(r["rl_slo"]) for r in rows),
        "rl_meets_slo_after_warmup_where_reachable": sum(1 for r in reachable if float(r["rl_slo_warm"]) >= target),
        # "Reachable" read as reachable by the same foresight from the same cold start (the initial fleet, real
        # start-up delays): the oracle starts with its first fleet ready, which no policy can.
        "oracle-startup_reachable_cases": len(early),
        "rl_meets_slo_where_oracle-startup_reaches": sum(1 for r in early if float(r["rl_slo"]) >= target),
    }
    for b in baselines:
        s[f"rl_cost_vs_{b}"] = tot("rl_cost") / tot(f"{b}_cost")
        s[f"{b}_meets_slo_where_reachable"] = sum(1 for r in reachable if float(r[f"{b}_slo"]) >= target)
        s[f"{b}_meets_slo_after_warmup_where_reachable"] = sum(1 for r in reachable
                                                              if float(r[f"{b}_slo_warm"]) >= target)
        s[f"{b}_meets_slo_where_oracle-startup_reaches"] = sum(1 for r in early if float(r[f"{b}_slo"]) >= target)
        s[f"cases_rl_cheaper_than_{b}"] = sum(1 for r in rows if float(r["rl_cost"]) < float(r[f"{b}_cost"]))
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--policy", help="policy zip (default policies/SCENARIO.zip) or a rule name such as burst")
    ap.add_argument("--quick", action="store_true", help="fewer cases (for tests)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sc = load_scenario(args.scenario)
    policy_zip = Path(args.policy or POLICIES / f"{sc.name}.zip")
    baselines = ["ray-default", "hpa"] + (["ray-tuned"] if ray_tuned_path(sc).exists() else [])
    rows = []
    t0 = time.monotonic()
    for case in cases(sc, args.quick):
        r = run_case(case, policy_zip, baselines)
        rows.append(r)
        cells = "  ".join(f"{k}: ${float(r[f'{k}_cost']):7.2f} {float(r[f'{k}_slo']):7.2%}"
                          for k in ["rl", *baselines, "oracle"])
        print(f"{case.name:>22}  {cells}", flush=True)
    summary = summarize(rows, sc.slo.target, baselines)
    summary["wall_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(summary, indent=2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # A named rule (burst, headroom:1.5) gets its own file next to the trained policy's.
    # A zip with a crowd floor (policies/default.zip+crowd:2.5) is named by its file name.
    rule = "" if str(policy_zip).endswith(".zip") else "-" + policy_zip.name.replace(":", "_")
    stem = f"rl_eval-{sc.name}{rule}{'-quick' if args.quick else ''}"  # "burst:1.5" has a dot: no with_suffix
    keys = [k for k in rows[0] if k != "command"] + ["command"]
    with open(out / f"{stem}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    (out / f"{stem}.json").write_text(json.dumps({"scenario": sc.name, "policy": str(policy_zip),
                                                     "summary": summary, "rows": rows}, indent=2,
                                                    default=lambda x: None if isinstance(x, float) and math.isnan(x)
                                                    else x) + "\n")
    print(f"wrote {out / stem}.csv and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
