"""Small result files shaped as the benchmarks write them, built with the benchmarks' own writers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotune.benchmark import heldout, price
from autotune.benchmark.cases import cases
from autotune.scenario import load_scenario

POLICIES = ["ray-default", "predictive", "predictive+crowd:3", "policies/default.zip"]
# Per case, per policy or plan: (SLO attainment, after the warm-up, cost). The plans come last.
COSTS = {
    "own-seed0": {"ray-default": (1.0, 1.0, 4.0), "predictive": (1.0, 1.0, 2.0), "predictive+crowd:3": (1.0, 1.0, 3.0),
                  "policies/default.zip": (1.0, 1.0, 2.8), "oracle-startup": (1.0, 1.0, 1.6),
                  "oracle": (1.0, 1.0, 1.5), "oracle+crowd:3": (1.0, 1.0, 2.7)},
    "mmpp@300-seed0": {"ray-default": (0.98, 0.985, 10.0), "predictive": (0.95, 0.96, 3.0),
                       "predictive+crowd:3": (0.984, 0.999, 3.5), "policies/default.zip": (0.984, 0.999, 3.6),
                       "oracle-startup": (0.979, 0.99, 2.2), "oracle": (0.991, 0.991, 1.7),
                       "oracle+crowd:3": (1.0, 1.0, 3.3)},
}

# The fixture's cases are both synthetic shapes; a test moves one to another group by changing this.
GROUPS: dict[str, str] = {}


def _rows(names: list[str]) -> list[dict[str, float | int | str]]:
    return [{"case": c, "family": c.split("@")[0].split("-")[0], "group": GROUPS.get(c, "synthetic-shapes"),
             "policy": p, "requests": 1000,
             "slo_attainment": slo, "slo_after_warmup": warm, "cost_usd": cost, "p99_ms": 80.0,
             "guarded": p in ("predictive", "predictive+crowd:3", "policies/default.zip")}
            for c in COSTS for p, (slo, warm, cost) in COSTS[c].items() if p in names]


def write_fixture(folder: Path, scenario: str = "default", noguards: bool = True) -> None:
    sc = load_scenario(scenario)
    listed = [c for c in cases(sc) if c.name in COSTS]
    for guards in ("live", "none") if noguards else ("live",):
        rows = _rows([*POLICIES, *heldout.ORACLES])
        if guards == "none":  # without the guards' step limits a policy pays a little less
            rows = [r | {"cost_usd": float(r["cost_usd"]) * (0.9 if r["policy"] in POLICIES else 1.0)} for r in rows]
        result = heldout.Heldout(sc, POLICIES, guards, rows, listed, 12.0, command=f"heldout {scenario} {guards}")
        heldout.write(result, folder)
    rows = _rows([*POLICIES, *heldout.ORACLES, "oracle+crowd:3"])
    summary = price.breakdown(rows, POLICIES, [3.0], sc.slo.target)
    price.write(price.PriceBreakdown(sc, POLICIES, [3.0], rows, summary, 3.0, command=f"price {scenario}"), folder)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    write_fixture(folder)
    (folder / "sim_throughput.json").write_text(json.dumps({
        "command": "sim", "requests": 7_200_000, "rate": 2000.0, "duration_s": 3600.0, "repeat": 3,
        "sim_cpu_s": 12.0, "sim_wall_s": 13.0, "baseline_cpu_s": 0.05, "baseline": "a loop", "normalized": 240.0,
        "simulated_requests_per_s": 600000, "requests_in_baseline_time": 30000, "machine": "x86_64, 2 cores"}))
    return folder
