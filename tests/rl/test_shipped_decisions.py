"""The shipped policies decide as they did when tests/rl/data/shipped_decisions.json was recorded.

The recording is one simulated hour of each scenario's own workload (seed 0) per shipped policy whose zip is
unchanged: every decision (replicas, batch sizes, the reason) and what was applied, under the pools' bounds alone
(the live guards have tests of their own, and tuning them must not read as a change of the network). Decoding
code may be reorganised freely; a change here means a shipped network now sizes fleets differently from how it was
trained and validated.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotune.paths import POLICIES
from autotune.registry import make_policy
from autotune.scenario import load_scenario
from autotune.sim.run import simulate
from autotune.workload.arrivals import build_arrivals

RECORDED = Path(__file__).parent / "data" / "shipped_decisions.json"


def decisions(name: str, seed: int = 0) -> list[dict[str, object]]:
    """What ``policies/NAME.zip`` decides on an hour of its scenario's own workload."""
    sc = load_scenario(name)
    res = simulate(sc, build_arrivals(sc, seed), make_policy(str(POLICIES / f"{name}.zip"), sc), seed, guards=None)
    return [{"t0": w.t0, "replicas": dict(w.decision.replicas), "batch_size": dict(w.decision.batch_size),
             "reason": w.decision.reason, "applied": dict(w.applied.replicas) if w.applied else None}
            for w in res.windows if w.decision is not None]


@pytest.mark.parametrize("name", ["default", "mixed", "mixed-large"])
def test_shipped_policy_decides_as_recorded(name: str) -> None:
    want = json.loads(RECORDED.read_text())[name]
    got = decisions(name)
    assert len(got) == len(want) == 362  # 3600 s + drain at 10 s windows
    for g, w in zip(got, want, strict=True):
        assert g == w, f"t0={w['t0']}"
