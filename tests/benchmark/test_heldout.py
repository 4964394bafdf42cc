"""A tiny held-out run: one case cut to two minutes, two policies and both plans, written as the benchmark writes."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from autotune.benchmark import heldout, price
from autotune.benchmark.cases import Case, cases
from autotune.benchmark.results import HELDOUT_COLUMNS, load_heldout, read_heldout_rows
from autotune.paths import ROOT
from autotune.registry import make_policy
from autotune.scenario import Scenario, load_scenario
from autotune.sim.run import simulate

POLICIES = ["ray-default", "predictive+crowd:3"]


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario("default")


@pytest.fixture(scope="module")
def case(scenario: Scenario) -> Case:
    return cases(scenario, ["own"])[0].cut(120.0)


def test_tiny_run_writes_the_columns(tmp_path: Path, scenario: Scenario, case: Case) -> None:
    result = heldout.run_heldout(scenario, POLICIES, case_list=[case])
    csv_path, json_path = heldout.write(result, tmp_path)
    assert csv_path.name == "heldout-default.csv"
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == HELDOUT_COLUMNS
    assert [r["policy"] for r in rows] == [*POLICIES, "oracle-startup", "oracle"]
    assert {r["case"] for r in rows} == {"own-seed0"} and {r["family"] for r in rows} == {"own"}
    assert len({r["requests"] for r in rows}) == 1  # the same arrivals for every run
    doc = json.loads(json_path.read_text())
    assert doc["policies"] == POLICIES and doc["guards"] == "live" and doc["wall_s"] >= 0
    # The emulated built-in autoscaler and the plans run without autotune's guards, the rule behind them.
    assert doc["guarded"] == {"ray-default": False, "predictive+crowd:3": True, "oracle-startup": False,
                              "oracle": False}
    s = doc["summary"]["predictive+crowd:3"]
    assert s["cases"] == 1 and 0 <= s["kept"] <= 1 and s["cost_vs_ray_default"] > 0
    assert doc["cases"][0]["command"].startswith("autotune whatif --scenario default --policy ray-default")
    assert list(load_heldout("default", folder=tmp_path).columns) == list(HELDOUT_COLUMNS)

    # The price breakdown on the same rows: the insured plan simulated on the same arrivals.
    pb = price.run_price(scenario, read_heldout_rows("default", folder=tmp_path), [case], POLICIES)
    assert pb.crowd == [3.0]
    by = {r["name"]: r for r in pb.summary}
    assert by["predictive+crowd:3"]["compared_with"] == "oracle+crowd:3"
    assert by["ray-default"]["compared_with"] == "oracle-startup"
    # Priced against ray-default's cost over the same cases, whole and by traffic group.
    assert by["oracle"]["cases"] == 1 and by["ray-default"]["vs_ray_default"] == pytest.approx(1.0)
    assert by["oracle"]["vs_ray_default"] == pytest.approx(by["oracle"]["cost_usd"] / by["ray-default"]["cost_usd"])
    assert list(pb.by_group()) == [case.group] and pb.by_group()[case.group] == pb.summary


def test_bounds_alone(scenario: Scenario, case: Case) -> None:
    """--guards none: the policy's decisions meet the bounds alone, as ``simulate(..., guards=None)``."""
    rows = heldout.run_case(case, ["ray-default"], guards="none")
    direct = simulate(case.scenario, case.arrivals(), make_policy("ray-default", case.scenario), case.seed,
                      guards=None).summary()
    assert rows[0]["cost_usd"] == pytest.approx(float(direct["cost_usd"]))
    unguarded = heldout.Unguarded(make_policy("hpa", scenario))
    assert unguarded.guarded is False and unguarded.name == "hpa"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_refuses_to_overwrite_with_part(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script("heldout").main(["--case", "own-seed0"]) == 2
    assert "--out" in capsys.readouterr().err
    assert _script("heldout").main(["--case", "nope", "--out", "/nonexistent"]) == 2
    assert "no case nope" in capsys.readouterr().err


def test_price_cli_names_a_missing_heldout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _script("price_breakdown").main(["--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "heldout-default.json is missing (run .venv/bin/python bench/heldout.py --scenario default)" in err


def test_rows_carry_the_group_and_the_summary_is_per_group(tmp_path: Path, scenario: Scenario) -> None:
    """Two new-family cases cut to a minute: each row names its case's group, the JSON summarizes each group."""
    wanted = ("llm-clumped-code@30-seed0", "spiky@30-seed0")
    todo = [c.cut(60.0) for c in cases(scenario, ["spiky", "llm-clumped"]) if c.name in wanted]
    assert [c.group for c in todo] == ["llm", "spiky"]  # table order: llm-clumped before spiky
    result = heldout.run_heldout(scenario, ["ray-default"], case_list=todo)
    assert {(r["case"], r["group"]) for r in result.rows} == {(c.name, c.group) for c in todo}
    _, json_path = heldout.write(result, tmp_path)
    doc = json.loads(json_path.read_text())
    assert list(doc["by_group"]) == ["llm", "spiky"]
    assert doc["by_group"]["spiky"]["ray-default"]["cases"] == 1
    assert {c["group"] for c in doc["cases"]} == {"llm", "spiky"}
    assert {r["group"] for r in read_heldout_rows("default", folder=tmp_path)} == {"llm", "spiky"}


def test_a_policy_is_dominated_by_the_rules_cheaper_and_better_in_slo() -> None:
    s = {"zip": {"cost_usd": 10.0, "slo_overall": 0.99}, "a": {"cost_usd": 9.0, "slo_overall": 0.995},
         "b": {"cost_usd": 9.0, "slo_overall": 0.98}, "c": {"cost_usd": 10.0, "slo_overall": 0.99},
         "d": {"cost_usd": 11.0, "slo_overall": 0.999}}
    # a is both; b is cheaper but worse; c ties on both (no better in either); d is better but dearer.
    assert heldout.dominated_by(s, "zip", ["a", "b", "c", "d", "zip", "missing"]) == ["a"]
    assert heldout.dominated_by(s, "a", ["zip", "b", "c", "d"]) == []
