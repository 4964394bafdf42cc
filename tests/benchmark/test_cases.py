"""The held-out case list: 37 cases per scenario, by family and group, each with its equivalent whatif command."""

from __future__ import annotations

import argparse
import shlex
from collections import Counter

import numpy as np
import pytest

from autotune.benchmark.cases import FAMILIES, Family, cases, family_names, group_of
from autotune.cli_common import add_trace_options, trace_options
from autotune.errors import InputError
from autotune.scenario import load_scenario
from autotune.workload.families import GROUPS as GROUP_NAMES

EXPECTED = {"own": 3, "poisson": 2, "daily": 2, "mmpp": 2, "flash": 2, "ramp": 2, "azure-conv": 4,
            "azure-code": 4, "nasa": 4, "worldcup-daily": 2, "worldcup-crowds": 4, "synthetic-crowds": 2,
            "llm-clumped": 4, "spiky": 2}
GROUPS = {"own": "synthetic-shapes", "poisson": "synthetic-shapes", "daily": "synthetic-shapes",
          "mmpp": "synthetic-shapes", "flash": "synthetic-shapes", "ramp": "synthetic-shapes", "azure-conv": "llm",
          "azure-code": "llm", "nasa": "daily", "worldcup-daily": "daily", "worldcup-crowds": "crowds",
          "synthetic-crowds": "crowds", "llm-clumped": "llm", "spiky": "spiky"}


@pytest.mark.parametrize("name,own_generator", [("default", "daily"), ("mixed", "mmpp"), ("mixed-large", "daily")])
def test_37_cases_by_family(name: str, own_generator: str) -> None:
    sc = load_scenario(name)
    got = cases(sc)
    assert len(got) == 37
    assert len({c.name for c in got}) == 37
    assert all(c.group == GROUPS[c.family] for c in got)
    counts = Counter(c.family for c in got)
    # The scenario's own generator is the ``own`` family's: not again at other rates.
    assert counts == {f: n for f, n in EXPECTED.items() if f != own_generator}
    assert set(family_names()) == set(EXPECTED)
    for c in got:
        assert c.command.startswith(f"autotune whatif --scenario {name} ")
        assert c.scenario.name == name  # ray-tuned and the shipped zip are found by it


def test_commands_name_the_cases() -> None:
    by_name = {c.name: c for c in cases(load_scenario("default"))}
    assert by_name["own-seed1"].command == "autotune whatif --scenario default --seed 1"
    assert by_name["azure-code@300"].command == ("autotune whatif --scenario default --trace "
                                                 "traces/azure_llm_code_2023.csv --duration 3600 --mean-rate 300")
    flash = by_name["flash@30-seed0"]
    assert flash.scenario.workload.generator == "flash" and flash.scenario.workload.mean_rate == 30
    assert "--mean-rate 30 --duration 3600 --seed 0" in flash.command and "generator flash" in flash.command
    pol = by_name["nasa-day0@10"].command_with(["ray-default", "predictive+crowd:3"])
    assert pol.startswith("autotune whatif --scenario default --policy ray-default --policy predictive+crowd:3 ")


@pytest.mark.parametrize("case_name", ["azure-conv@10", "nasa-day0@10", "own-seed2", "worldcup-day0@30"])
def test_command_makes_the_same_arrivals(case_name: str) -> None:
    """The whatif options in a case's command build exactly the arrivals the benchmark runs."""
    case = next(c for c in cases(load_scenario("default")) if c.name == case_name)
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario")
    ap.add_argument("--seed", type=int, default=0)
    add_trace_options(ap)
    args = ap.parse_args(shlex.split(case.command)[2:])
    from autotune.workload.arrivals import build_arrivals

    typed = build_arrivals(load_scenario(args.scenario), args.seed, trace_options(args))
    np.testing.assert_array_equal(typed.times, case.arrivals().times)


def test_families_are_data() -> None:
    sc = load_scenario("default")
    only = cases(sc, ["nasa", "own"])
    assert [c.family for c in only] == ["own"] * 3 + ["nasa"] * 4
    table = (Family("poisson", "generator", (50.0,), seeds=(4, 5)),)
    assert [c.name for c in cases(sc, table=table)] == ["poisson@50-seed4", "poisson@50-seed5"]
    with pytest.raises(InputError, match="unknown case families"):
        cases(sc, ["nope"])
    assert [f.name for f in FAMILIES] == list(EXPECTED)


def test_cut_shortens_every_kind() -> None:
    sc = load_scenario("default")
    for c in (cases(sc, ["own"])[0], cases(sc, ["ramp"])[0], cases(sc, ["azure-conv"])[0]):
        arr = c.cut(60.0).arrivals()
        assert arr.duration_s == 60.0 and arr.times.max() < 60.0


def test_groups_and_training() -> None:
    assert {f.name: f.group for f in FAMILIES} == GROUPS and set(GROUPS.values()) == set(GROUP_NAMES)
    # The LLM group is never trained on (the Azure traces are held out whole); every other family is.
    assert {f.name for f in FAMILIES if not f.trained} == {"azure-conv", "azure-code", "llm-clumped"}
    assert group_of("worldcup-crowds") == "crowds"


def test_new_families_build_the_workload_the_note_names() -> None:
    by_name = {c.name: c for c in cases(load_scenario("default"))}
    crowd = by_name["worldcup-crowds-day55@300-seed0"]
    assert crowd.scenario.workload.generator == "worldcup" and crowd.scenario.workload.params["day"] == 55.65
    assert "generator worldcup {'day': 55.65, 'time_scale': 0.25}" in crowd.command
    code = by_name["llm-clumped-code@30-seed0"]
    assert code.scenario.workload.params == {"code": 1.0}
    assert by_name["worldcup-day0@30"].command == (
        "autotune whatif --scenario default --trace traces/worldcup98_per_minute_to_0625.csv --time-scale "
        "0.041666666666666664 --duration 3600 --mean-rate 30")
    for name in ("spiky@30-seed0", "llm-clumped-conv@30-seed0", "worldcup-crowds-day53@30-seed0"):
        arr = by_name[name].cut(120.0).arrivals()
        assert arr.duration_s == 120.0 and 0 < arr.times.max() < 120.0
