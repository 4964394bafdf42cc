"""What a controller restart costs, cold or primed from the metrics history (``control --prime-from``).

For each ``bench/rl_eval.py`` case and policy, three runs of the same hour on
the same simulated cluster:

- ``along``: the controller runs the whole hour;
- ``cold``: it is restarted at ``--at`` seconds with an empty state (no
  ``--state`` file, no history): its policy time starts again, its rate
  history, margins and burst guard start from nothing;
- ``primed``: it is restarted at ``--at`` and primed as ``--prime-from``
  primes it: the policy folded over the windows before the restart
  (``autotune.live.history.fold``), each window as a Prometheus history of
  Serve's metrics records it (``as_recorded``): load, latency and serving
  replicas, but no replicas starting, today's batch sizes and no preemptions.

It reports, for requests arriving after the restart, the SLO attainment and the
dollars spent, per case and in total.

    .venv/bin/python bench/restart.py --scenario default

writes ``bench/results/restart-<scenario>.csv`` and ``.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from rl_eval import cases

from autotune.live.history import as_recorded, fold
from autotune.paths import POLICIES, ROOT
from autotune.policies.registry import make_policy
from autotune.policies.types import Decision, Observation, Policy, PolicyState
from autotune.rl.evaluation import slo_after
from autotune.scenario import load_scenario
from autotune.sim.run import SimResult, simulate
from autotune.workload.arrivals import build_arrivals

MODES = ("along", "cold", "primed")


@dataclass
class Restarted:
    """``inner`` as run by a controller that is restarted at ``at_s``, cold or primed."""

    inner: Policy
    at_s: float
    interval_s: float
    primed: bool

    @property
    def name(self) -> str:
        return f"{self.inner.name} ({'primed' if self.primed else 'cold'} restart at {self.at_s:g}s)"

    def initial_state(self) -> PolicyState:
        return {"inner": self.inner.initial_state(), "past": [], "restarted": False}

    def _clock(self, obs: Observation) -> Observation:
        # A cold controller's policy time starts again (its first window ends at one interval); a primed one
        # goes on from the replayed windows, which is where the old one was.
        return obs if self.primed else replace(obs, time_s=obs.time_s - self.at_s + self.interval_s)

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        if not state["restarted"] and obs.time_s < self.at_s - 1e-9:
            decision, inner = self.inner.decide(obs, state["inner"])
            state["past"].append(obs)
            return decision, {**state, "inner": inner}
        if not state["restarted"]:
            if self.primed:
                inner, _ = fold(self.inner, [as_recorded(o, obs) for o in state["past"]])
            else:
                inner = self.inner.initial_state()
            state = {"inner": inner, "past": [], "restarted": True}
        decision, inner = self.inner.decide(self._clock(obs), state["inner"])
        return decision, {**state, "inner": inner}


def after(res: SimResult, t0: float) -> tuple[float, float]:
    """(SLO attainment of requests arriving after t0, dollars spent in windows from t0)."""
    return slo_after(res, t0), sum(w.cost_usd for w in res.windows if w.t0 >= t0 - 1e-9)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--policy", action="append", help="repeatable (default: the shipped policy and its rule)")
    ap.add_argument("--at", type=float, default=1200.0, help="restart time, seconds into each hour")
    ap.add_argument("--quick", action="store_true", help="fewer cases")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.monotonic()
    sc0 = load_scenario(args.scenario)
    names = args.policy or [str((POLICIES / f"{sc0.name}.zip").relative_to(ROOT)), "predictive+crowd:3"]
    step = sc0.control_interval_s
    at = round(args.at / step) * step
    rows: list[dict[str, Any]] = []
    for case in cases(sc0, args.quick):
        arrivals = build_arrivals(case.scenario, case.seed, case.options)
        for name in names:
            row: dict[str, Any] = {"case": case.name, "policy": name}
            for mode in MODES:
                inner = make_policy(str(ROOT / name) if name.endswith(".zip") else name, case.scenario)
                pol: Policy = inner if mode == "along" else Restarted(inner, at, step, mode == "primed")
                slo, cost = after(simulate(case.scenario, arrivals, pol, case.seed), at)
                row[f"{mode}_slo"], row[f"{mode}_cost"] = slo, cost
            rows.append(row)
            print(f"{case.name:>22} {Path(name).name:>20}  " + "  ".join(
                f"{m} {row[f'{m}_slo']:7.2%} ${row[f'{m}_cost']:6.2f}" for m in MODES), flush=True)
    target = sc0.slo.target
    summary: dict[str, Any] = {"scenario": sc0.name, "restart_at_s": at, "cases": len(rows) // len(names),
                               "wall_s": round(time.monotonic() - t_start, 1), "policies": {}}
    for name in names:
        mine = [r for r in rows if r["policy"] == name]
        s = {f"{m}_kept": sum(r[f"{m}_slo"] >= target for r in mine) for m in MODES}
        s.update({f"{m}_cost": round(sum(r[f"{m}_cost"] for r in mine), 2) for m in MODES})
        s.update({f"{m}_worst_slo": round(min(r[f"{m}_slo"] for r in mine), 4) for m in MODES})
        summary["policies"][name] = s
        print(f"{name}: " + ", ".join(f"{m}: {s[f'{m}_kept']}/{len(mine)} kept, ${s[f'{m}_cost']:.2f}, "
                                      f"worst {s[f'{m}_worst_slo']:.2%}" for m in MODES))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"restart-{sc0.name}"
    with open(f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    Path(f"{stem}.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {stem}.csv and .json in {summary['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
