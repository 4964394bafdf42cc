"""The training distribution: by traffic group, one group left out on request, never a held-out seed or day."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from autotune.benchmark.cases import FAMILIES
from autotune.rl import workloads as W
from autotune.rl.config import TrainConfig, parse_set
from autotune.scenario import load_scenario
from autotune.workload import worldcup
from autotune.workload.families import GROUPS


def _episodes(leave_out: str | None, n: int = 120) -> list[W.Episode]:
    sc = load_scenario("default")
    rng = np.random.default_rng(7)
    return [W.sample_training_episode(sc, rng, 120.0, 3600.0, leave_out) for _ in range(n)]


def _check_held_out(ep: W.Episode) -> None:
    assert ep.seed >= W.TRAIN_SEED_BASE
    if ep.family == "nasa":
        assert ep.day is not None and W.NASA_TRAIN_DAYS[0] <= ep.day < W.NASA_TRAIN_DAYS[1]
    if ep.family.startswith("worldcup"):
        scale = worldcup.CROWD_SCALE if ep.family == "worldcup-crowds" else worldcup.DAILY_SCALE
        assert ep.day is not None and not worldcup.held_out(ep.day, 120.0 / scale / W.DAY_S)


def test_every_trained_group_is_drawn_and_nothing_held_out() -> None:
    eps = _episodes(None, 200)
    assert set(Counter(e.group for e in eps)) == set(W.GROUP_WEIGHTS) == set(GROUPS) - {"llm"}
    assert {e.family for e in eps} == {f for fams in W.TRAINING_FAMILIES.values() for f in fams}
    for ep in eps:
        _check_held_out(ep)
        assert ep.arrivals.duration_s == 120.0 and len(ep.arrivals) > 0


@pytest.mark.parametrize("group", [g for g in GROUPS if g != "llm"])
def test_a_group_left_out_is_never_drawn(group: str) -> None:
    eps = _episodes(group, 60)
    assert all(e.group != group for e in eps)
    assert all(e.family not in W.TRAINING_FAMILIES[group] for e in eps)
    for ep in eps:
        _check_held_out(ep)


def test_training_families_match_the_benchmark_table() -> None:
    """Training draws the families the benchmark marks trained, each in the group the benchmark reports it in."""
    table = {f.name: f for f in FAMILIES}
    drawn = {f for fams in W.TRAINING_FAMILIES.values() for f in fams}
    assert drawn == {f.name for f in FAMILIES if f.trained and f.name != "own"}
    for group, fams in W.TRAINING_FAMILIES.items():
        assert all(table[f].group == group for f in fams)


def test_leave_out_is_a_training_key() -> None:
    cfg, _ = parse_set(["leave_out=crowds"])
    assert cfg.leave_out == "crowds" and TrainConfig().leave_out is None
    with pytest.raises(Exception, match="leave_out"):
        parse_set(["leave_out=nope"])
    with pytest.raises(ValueError, match="leave_out must be one of"):
        W.sample_training_episode(load_scenario("default"), np.random.default_rng(0), 60.0, 3600.0, "nope")
    assert "worldcup98_per_minute_to_0625.csv days 40..52 (crowds)" not in W.trained_traces("crowds")
    assert W.trained_generators("synthetic-shapes") == ["crowds", "spiky"]
