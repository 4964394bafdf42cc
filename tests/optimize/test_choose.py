"""The choice: the cheapest candidate meeting the target on the choose part, never looking at the report part."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from autotune.optimize.choose import Figure, choose, figures


def _fig(name: str, cost: float, slo: float, part: str = "choose") -> Figure:
    return Figure(name, part, cost, cost, slo, 100, 0, 0.0, 1)


def test_cheapest_meeting_the_target() -> None:
    figs = [_fig("a", 3.0, 0.999), _fig("b", 1.0, 0.98), _fig("c", 2.0, 0.99), _fig("d", 2.5, 1.0)]
    c = choose(figs, 0.99)
    assert c.chosen == "c" and c.met


def test_meeting_the_target_only_on_average_does_not_count() -> None:
    uneven = Figure("uneven", "choose", 1.0, 1.0, 0.995, 100, 0, 0.0, 1, worst_slice_slo=0.97)
    assert choose([uneven, _fig("even", 2.0, 0.992)], 0.99).chosen == "even"


def test_none_meeting_the_target_takes_the_highest_slo() -> None:
    c = choose([_fig("a", 3.0, 0.95), _fig("b", 1.0, 0.97)], 0.99)
    assert c.chosen == "b" and not c.met


def test_figures_sum_slices_and_average_seeds() -> None:
    rows = [{"candidate": "x", "part": "choose", "slice": k, "seed": s, "requests": 10, "on_time": 9 + s,
             "lost": 0, "cost_usd": 1.0 + s, "scored_s": 1800.0, "scale_actions": 1} for k in (0, 1) for s in (0, 1)]
    rows.append({**rows[0], "part": "report", "cost_usd": 100.0})
    (f,) = figures(rows, ["x"], "choose")
    assert f.cost_usd == pytest.approx(3.0)  # (1 + 1) + (2 + 2) over two seeds
    assert f.slo_attainment == pytest.approx(38 / 40)
    assert f.usd_per_hour == pytest.approx(3.0)  # one hour scored per seed
    assert f.requests == 20 and f.seeds == 2


@pytest.mark.slow
def test_optimize_chooses_the_cheapest_meeting_the_target_on_the_choose_part(short_trace: Path,
                                                                             tmp_path: Path) -> None:
    from autotune.optimize.run import Options, optimize
    from autotune.workload.arrivals import TraceOptions

    out = tmp_path / "out"
    res = optimize(Options(trace=TraceOptions(trace=str(short_trace)), target=0.95, ladder=[3.0], seeds=1,
                           tune=False, fine_tune_steps=0, local=True, out=str(out), slice_s=600.0),
                   log=lambda s: None)
    with open(out / "report.csv") as fh:
        table = list(csv.DictReader(fh))
    choose_rows = [r for r in table if r["part"] == "choose"]
    assert {r["candidate"] for r in choose_rows} == {c.name for c in res.candidates}
    meeting = [r for r in choose_rows if float(r["slo_attainment"]) >= 0.95]
    assert meeting
    cheapest = min(meeting, key=lambda r: float(r["cost_usd"]))
    assert json.loads((out / "chosen.json").read_text())["chosen"] == cheapest["candidate"] == res.choice.chosen
    assert [r["chosen"] for r in table].count("yes") == 2  # its choose row and its report row
