"""The controller's traffic record and the reading of an optimizer run's offer (``autotune.live.reoptimize``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autotune.errors import InputError
from autotune.live.reoptimize import Reoptimizer, TrafficRecord, read_offer
from autotune.workload.traces import RateTrace, read_trace


def test_the_record_is_a_rate_trace_the_optimizer_reads(tmp_path: Path) -> None:
    rec = TrafficRecord(tmp_path / "r" / "recorded.csv")
    for k, n in enumerate([30, 31, 0, 45]):
        rec.add(100.0 + 5.0 * (k + 1), 5.0, n)
    rec.close()
    trace = read_trace(rec.path)
    assert isinstance(trace, RateTrace)
    assert np.allclose(trace.start_s, [0, 5, 10, 15]) and list(trace.counts) == [30, 31, 0, 45]


def _run_folder(tmp_path: Path, rows: list[str]) -> Path:
    (tmp_path / "chosen.json").write_text(json.dumps({"chosen": "hpa", "policy": "hpa", "target": 0.95}))
    (tmp_path / "report.csv").write_text("candidate,part,cost_usd,slo_attainment\n" + "\n".join(rows) + "\n")
    return tmp_path


def test_an_offer_compares_the_chosen_and_the_running_policy_on_the_report_part(tmp_path: Path) -> None:
    out = _run_folder(tmp_path, ["hpa,choose,9,0.9", "hpa,report,1.5,0.99", "static:6,report,3,1.0"])
    offer = read_offer(out, "static:6")
    assert (offer.policy, offer.cost_usd, offer.slo, offer.champion_cost_usd, offer.champion_slo) == \
        ("hpa", 1.5, 0.99, 3.0, 1.0)
    assert offer.against == "static:6" and offer.target == 0.95
    with pytest.raises(InputError, match="no report-part row for the running 'predictive'"):
        read_offer(out, "predictive")
    with pytest.raises(InputError, match="wrote no such file"):
        read_offer(tmp_path / "missing", "static:6")


def test_runs_are_due_every_period_once_the_record_is_long_enough(tmp_path: Path) -> None:
    ro = Reoptimizer(tmp_path, "live-demo", "static:6", 0.95, every_s=60.0, min_windows=3)
    assert not ro.due(0.0)  # the first look starts the period
    for k in range(3):
        ro.record.add(5.0 * (k + 1), 5.0, 10)
    assert not ro.due(30.0) and ro.due(60.0)
    assert ro.command(tmp_path / "run")[1:5] == ["-m", "autotune", "optimize", "--scenario"]
    assert "--candidate" in ro.command(tmp_path / "run")
    ro.stop()
