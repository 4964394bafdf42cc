"""``autotune.whatif.run``: the what-if as a Python call, its DataFrames, and the CLI built on it."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autotune import whatif
from autotune.cli import main
from autotune.errors import InputError
from autotune.registry import make_policy
from autotune.scenario import load_scenario
from autotune.sim.run import SUMMARY_COLUMNS
from autotune.workload.arrivals import TraceOptions, build_arrivals

POLICIES = ["static:2", "predictive+crowd:3"]
RUNS = [*POLICIES, "oracle-startup", "oracle", "oracle+crowd:3"]  # the crowd floor brings the insured oracle
DURATION = 300.0


@pytest.fixture(scope="module")
def result() -> whatif.WhatIfResult:
    return whatif.run("default", POLICIES, duration=DURATION, seed=3)


def test_summary_is_the_cli_csv_of_the_same_run(result: whatif.WhatIfResult, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    argv = ["whatif", "--duration", f"{DURATION:g}", "--seed", "3", "--out", str(out)]
    assert main(argv + [a for p in POLICIES for a in ("--policy", p)]) == 0
    summary = result.summary()
    assert list(summary.columns) == list(SUMMARY_COLUMNS) and list(summary["policy"]) == RUNS
    # the CSV keeps 6 significant digits; everything else is the same run
    pd.testing.assert_frame_equal(pd.read_csv(out), summary, check_exact=False, rtol=1e-5, check_dtype=False)
    for col in ("requests", "scale_actions", "dropped", "rejected", "timed_out", "late"):
        assert summary[col].dtype.kind == "i"


def test_windows_one_row_per_control_window_per_run(result: whatif.WhatIfResult, tmp_path: Path) -> None:
    sc = result.scenario
    windows = result.windows()
    n = int(np.ceil((DURATION + sc.drain_s) / sc.control_interval_s))
    assert windows.groupby("policy", sort=False).size().to_dict() == dict.fromkeys(RUNS, n)
    pools = [p.name for p in sc.pools]
    assert list(windows.columns[:4]) == ["policy", "t0_s", "t1_s", "arrival_rate"]
    for col in ("p99_ms", "cost_usd", "decision", "guards",
                *(f"{p}_{s}" for p in pools for s in ("running", "starting", "pending", "batch_size"))):
        assert col in windows.columns, col
    # the windows' costs add up to the run's, and the load is the same arrivals for every run
    cost = windows.groupby("policy", sort=False)["cost_usd"].sum()
    assert cost.to_numpy() == pytest.approx(result.summary()["cost_usd"].to_numpy())
    per_run = windows.pivot(index="t1_s", columns="policy", values="arrival_rate")
    assert (per_run.sub(per_run["oracle"], axis=0).abs().to_numpy() < 1e-9).all()
    # one run's windows are the rows of its --records window file
    one = result.windows("predictive+crowd:3")
    assert len(one) == n and set(one["policy"]) == {"predictive+crowd:3"}
    assert one["decision"].str.len().gt(0).any()
    result.write_records(tmp_path)
    records = list(csv.DictReader((tmp_path / "predictive+crowd_3.windows.csv").open()))
    assert list(records[0]) == list(one.columns[1:]) and len(records) == n


def test_requests_one_row_per_request_with_its_latency(result: whatif.WhatIfResult) -> None:
    row = result.summary().set_index("policy").loc["static:2"]
    req = result.requests("static:2")
    assert list(req.columns) == ["arrival_s", "start_s", "finish_s", "pool", "replica", "dropped", "timed_out",
                                 "latency_ms"]
    assert len(req) == row["requests"] == len(result.arrivals)
    assert req["dropped"].sum() == row["dropped"]
    assert req.loc[req["dropped"], "latency_ms"].isna().all()
    on_time = (req["latency_ms"] <= result.scenario.slo.latency_ms).sum()
    assert on_time / len(req) == pytest.approx(row["slo_attainment"])
    assert result.requests(0).equals(req)  # by position too
    with pytest.raises(KeyError, match="no run named 'hpa'"):
        result.requests("hpa")


def test_plot_and_verdict(result: whatif.WhatIfResult, tmp_path: Path) -> None:
    path = tmp_path / "r.png"
    fig = result.plot(path)  # the figure it saved
    assert len(fig.axes) == 3 * len(RUNS)
    assert [ax.get_title() for ax in fig.axes[:len(RUNS)]] == RUNS
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # what a notebook shows
    said = result.verdict()
    assert said == whatif.verdict(result) and said.startswith("clairvoyant: oracle $")
    assert "oracle+crowd:3" in said and "cheapest at the 99.0% target" in said


def test_scenario_and_policy_objects_give_the_runs_their_names_give() -> None:
    sc = load_scenario("default")
    by_name = whatif.run("default", "hpa", duration=120.0, mean_rate=50.0)  # one spec, not a list
    by_object = whatif.run(sc, [make_policy("hpa", sc)], duration=120.0, mean_rate=50.0)
    assert list(by_name.summary()["policy"]) == ["hpa", "oracle-startup", "oracle"]
    pd.testing.assert_frame_equal(by_name.summary(), by_object.summary())
    # a crowd-floored policy object brings its insured oracle as its spec would
    floored = make_policy("predictive+crowd:2", sc)
    assert whatif.run(sc, [floored], duration=120.0, mean_rate=50.0).policies[-1] == "oracle+crowd:2"


def test_options_reach_the_workload_and_the_pools() -> None:
    res = whatif.run("default", ["static:1"], duration=120.0, mean_rate=40.0, instance="T4", insure=0)
    assert res.scenario.name == "default@T4" and {p.instance for p in res.scenario.pools} == {"T4"}
    assert res.policies == ["static:1", "oracle-startup", "oracle"]
    sc = load_scenario("default")
    same = build_arrivals(sc, 0, TraceOptions(duration_s=120.0, mean_rate=40.0))
    assert res.arrivals.duration_s == pytest.approx(120.0) and np.array_equal(res.arrivals.times, same.times)
    assert len(same) < 0.5 * len(build_arrivals(sc, 0, TraceOptions(duration_s=120.0)))  # 40 req/s, not 300


def test_defaults_and_insurance() -> None:
    assert whatif.default_policies("default")[:5] == ["static", "ray-default", "hpa", "predictive",
                                                      "predictive+crowd:3"]
    assert whatif.default_policies("no-such-scenario")[-1] == "predictive+crowd:3"  # no shipped policy for it
    assert whatif.insurance(["hpa", "predictive+crowd:2.5", "burst+hold:3"]) == 3.0
    assert whatif.insurance(["hpa"]) == 0.0


@pytest.mark.parametrize("kwargs,message", [
    ({"insure": 0.5}, "--insure: must be 0 (none) or a surge K"),
    ({"policies": ["magic"]}, "unknown policy 'magic'"),
    ({"duration": -1.0}, "must be positive"),
    ({"instance": "B200"}, "unknown instance type 'B200'"),
])
def test_bad_input_is_the_clis_one_line_error(kwargs: dict[str, object], message: str) -> None:
    kwargs = {"policies": ["hpa"], "duration": 60.0, **kwargs}
    with pytest.raises(InputError, match=re.escape(message)):
        whatif.run("default", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no such scenario"):
        whatif.run("nowhere", ["hpa"])


def test_overload_columns_in_the_summary_and_the_windows() -> None:
    """A 5x flash crowd on a fixed fleet: ``+shed`` turns the excess away, clients with a timeout give up."""
    from tests.conftest import tweak

    base = load_scenario("default")
    wl = base.workload.model_copy(update={"generator": "flash", "duration_s": 300.0,
                                          "params": {"spike_factor": 5.0, "spike_duration_s": 60.0}})
    sc = tweak(base, {"max_replicas": 2}, workload=wl, client_timeout_s=3.0)
    res = whatif.run(sc, ["static:2", "static:2+shed"], duration=300.0, mean_rate=300.0, seed=1)
    s = res.summary().set_index("policy")
    assert s.loc["static:2", "rejected"] == 0 and s.loc["static:2", "timed_out"] > 0
    assert s.loc["static:2+shed", "rejected"] > 0
    assert s.loc["static:2+shed", "timed_out"] < s.loc["static:2", "timed_out"]
    for p in ("static:2", "static:2+shed"):
        on_time = round(s.loc[p, "slo_attainment"] * s.loc[p, "requests"])
        assert on_time + s.loc[p, "late"] + s.loc[p, "dropped"] + s.loc[p, "timed_out"] == s.loc[p, "requests"]
    w = res.windows("static:2+shed")
    for col in ("rejected", "timed_out", "late", "l4_max_queued"):
        assert col in w.columns, col
    assert w["rejected"].sum() == s.loc["static:2+shed", "rejected"]
    assert (w["l4_max_queued"].iloc[1:] > 0).all()
