"""Trained-policy files: cards validated and sha256 verified before loading, shipped policies run and decode
as their cards say, the untrained decodings are the rules they start from."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autotune.errors import InputError
from autotune.paths import POLICIES
from autotune.registry import make_policy
from autotune.rl.actions import decode_action
from autotune.rl.card import CARD_VERSION, ModelCard, parse_card, sha256_file
from autotune.rl.observation import LEVELS, initial_state, make_context, predictive_size, update_state
from autotune.rl.policy import RLPolicy, load_policy
from autotune.scenario import load_scenario
from autotune.sim.capacity import measure_capacity
from autotune.sim.run import simulate
from tests.rl.helpers import FixedActionPolicy, move_action, short_arrivals

SHIPPED = ["default", "mixed", "mixed-large", "live-demo"]
# a daily ramp each cluster can carry
SANITY_RATE = {"default": 200.0, "mixed": 200.0, "mixed-large": 100.0, "live-demo": 8.0}


def _copy(name: str, tmp_path: Path) -> Path:
    src = POLICIES / f"{name}.zip"
    if not src.exists():
        pytest.fail(f"shipped policy {src} is missing")
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def _edit_card(path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    card = path.with_suffix(".json")
    data = json.loads(card.read_text())
    edit(data)
    card.write_text(json.dumps(data))
    return card


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_policy_card_matches_and_runs(name: str) -> None:
    path = POLICIES / f"{name}.zip"
    text = path.with_suffix(".json").read_text()
    card = parse_card(json.loads(text), path.with_suffix(".json"))
    assert card.to_json() == text  # written by the schema, nothing else in it
    assert card.card_version == CARD_VERSION and card.policy == name and card.scenario == name
    assert card.sha256 == sha256_file(path)
    assert "/tmp" not in card.trained_from.command and f"--out policies/{name}.zip" in card.trained_from.command
    assert card.learning_curve and card.selection.shipped in card.learning_curve
    assert {row.policy for row in card.evaluation} >= {f"rl:{name}", "ray-default", "hpa", "oracle"}
    sc = load_scenario(name)
    pol = make_policy(str(path), sc)  # the same route whatif --policy takes
    assert isinstance(pol, RLPolicy)
    assert pol.ctx.obs_size == card.decoding.observation_size and pol.ctx.sizing == card.decoding.sizing
    arr = short_arrivals(sc, "daily", SANITY_RATE[name], 600.0, seed=3)
    s = simulate(sc, arr, pol, 3).summary()
    assert s["requests"] == len(arr) and s["cost_usd"] > 0
    assert s["slo_attainment"] > 0.9  # a trained policy, not a random one


def test_the_default_policy_decodes_with_the_burst_guard_its_card_added_after_training(tmp_path: Path) -> None:
    sc = load_scenario("default")
    card = ModelCard.model_validate_json((POLICIES / "default.json").read_text())
    guard = card.decoding.burst_guard
    assert guard is not None and not guard.in_training and card.hyperparameters.burst_guard == 0
    pol = load_policy(POLICIES / "default.zip", sc)
    assert (pol.ctx.burst_guard, pol.ctx.guard_windows * pol.ctx.interval_s) == (guard.ratio, guard.calm_s)
    arr = short_arrivals(sc, "poisson", 300.0, 300.0, seed=2)
    assert all("burst guard" in w.decision.reason for w in simulate(sc, arr, pol, 2).windows if w.decision)
    path = _copy("default", tmp_path)
    _edit_card(path, lambda d: d["decoding"].update(burst_guard=None))  # the network as it was trained
    plain = load_policy(path, sc)
    assert plain.ctx.burst_guard == 0.0
    assert not any("burst guard" in w.decision.reason for w in simulate(sc, arr, plain, 2).windows if w.decision)


def test_shipped_mixed_large_policy_buys_the_a100_when_the_l4_quotas_cannot_carry_the_load() -> None:
    """The fast GPU when the SLO needs it: nine L4s (the quotas) carry ~350 req/s of ViT-L/16 within 50 ms."""
    sc = load_scenario("mixed-large")
    pol = load_policy(POLICIES / "mixed-large.zip", sc)
    low = simulate(sc, short_arrivals(sc, "poisson", 100.0, 600.0, seed=4), pol, 4)
    assert max(d.replicas["a100"] for w in low.windows if (d := w.decision) is not None) == 0
    high = simulate(sc, short_arrivals(sc, "poisson", 450.0, 900.0, seed=4), pol, 4)
    late = [w.decision for w in high.windows if w.decision is not None and w.t0 >= 300.0]
    assert all(d.replicas["l4-spot"] == 6 and d.replicas["l4"] == 3 for d in late)  # the cheap pools are full
    assert min(d.replicas["a100"] for d in late) >= 1


def test_tampered_policy_is_refused(tmp_path: Path) -> None:
    path = _copy("default", tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as err:
        load_policy(path, load_scenario("default"))
    msg = str(err.value)
    assert str(path) in msg and "sha256" in msg and "\n" not in msg


def test_missing_or_wrong_card_is_refused(tmp_path: Path) -> None:
    path = _copy("default", tmp_path)
    _edit_card(path, lambda d: d.update(sha256="0" * 64))
    with pytest.raises(InputError, match="refusing a modified policy file"):
        load_policy(path, load_scenario("default"))
    path.with_suffix(".json").unlink()
    with pytest.raises(InputError, match="model card missing"):
        load_policy(path, load_scenario("default"))


def _set(*keys: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


def _levels(d: dict[str, Any]) -> None:
    d["decoding"]["levels"] = [x * 1.2 for x in d["decoding"]["levels"]]


def _untrained_sizing(d: dict[str, Any]) -> None:
    d["decoding"].update(sizing="predictive", crowd_factor=None, burst_guard=None)


def _old_version(d: dict[str, Any]) -> None:
    del d["card_version"]


@pytest.mark.parametrize("edit,field,needle", [
    (_old_version, "card_version", "missing; this autotune reads model cards of version 2"),
    (_set("card_version", value=1), "card_version", "is 1; this autotune reads model cards of version 2"),
    (_set("notes", value="prose"), "notes", "Extra inputs are not permitted"),
    (_set("decoding", "action_kind", value="sideways"), "decoding.action_kind", "Input should be 'fill'"),
    (_set("decoding", "sizing", value="forecast"), "decoding.sizing", "Input should be 'predictive' or 'crowd'"),
    (_set("decoding", "crowd_factor", value=0.5), "decoding.crowd_factor", "greater than or equal to 1"),
    (_set("decoding", "crowd_factor", value=None), "decoding.crowd_factor", "required with sizing crowd"),
    (_set("decoding", "burst_guard", "ratio", value=1.0), "decoding.burst_guard.ratio", "greater than 1"),
    (_set("decoding", "burst_guard", "calm_s", value=0), "decoding.burst_guard.calm_s", "greater than 0"),
    (_set("decoding", "burst_guard", "in_training", value=True), "decoding.burst_guard",
     "disagrees with the hyperparameters' burst_guard"),
    (_set("decoding", "mixed_capacity", value="modelled"), "decoding.mixed_capacity", "'measured' or 'added'"),
    (_levels, "decoding.levels", "this code decodes [0.0, 0.25"),
    (_untrained_sizing, "decoding.sizing", "is 'predictive', trained with 'crowd'"),
    (_set("decoding", "observation_size", value=39), "decoding.observation_size", "scenario default gives 38"),
    (_set("hyperparameters", "learning_rate", value=-1), "hyperparameters.learning_rate", "greater than 0"),
    (_set("trained_from", "command", value="autotune train --out /tmp/x.zip"), "trained_from.command",
     "must be an `autotune train` command with --out policies/default.zip"),
    (_set("learning_curve", 0, "learned", value="perhaps"), "learning_curve.0.learned", "valid boolean"),
    (_set("selection", "kept", value=None), "selection", "guarded selection needs"),
])
def test_a_malformed_card_is_one_line_naming_the_card_and_the_field(
        tmp_path: Path, edit: Callable[[dict[str, Any]], None], field: str, needle: str) -> None:
    path = _copy("default", tmp_path)
    card = _edit_card(path, edit)
    with pytest.raises(InputError) as err:
        load_policy(path, load_scenario("default"))
    msg = str(err.value)
    assert msg.startswith(f"{card}: {field}: ") and needle in msg and "\n" not in msg, msg


def test_policy_for_other_pools_is_refused(tmp_path: Path) -> None:
    path = _copy("default", tmp_path)
    with pytest.raises(InputError, match="trained for pools"):
        load_policy(path, load_scenario("mixed"))


def test_policy_state_is_explicit_and_decisions_are_pure() -> None:
    """Same observations and state in, same decision out; history lives in the state dict."""
    sc = load_scenario("default")
    pol = load_policy(POLICIES / "default.zip", sc)
    arr = short_arrivals(sc, "poisson", 300.0, 120.0, seed=1)
    res = simulate(sc, arr, pol, 1)
    obs = [w.obs for w in res.windows if w.obs is not None]
    s1 = s2 = pol.initial_state()
    for o in obs[:5]:
        d1, s1 = pol.decide(o, s1)
        d2, s2 = pol.decide(o, s2)
        assert d1 == d2 and s1 == s2
    json.dumps(s1)  # persistable by the live controller
    assert len(s1["rates"]) == 5


def test_levels_persist_in_the_state_move_along_the_ladder_and_follow_the_load() -> None:
    """A level persists across windows, moves along the ladder and stops at its ends; the target is the fewest
    replicas carrying level x the predictive size, so at a held level the fleet follows the load."""
    sc = load_scenario("default")
    ctx = make_context(sc, measure_capacity(sc))
    arr = short_arrivals(sc, "poisson", 300.0, 60.0, seed=1)
    obs = next(w.obs for w in simulate(sc, arr, make_policy("ray-default", sc), 1).windows if w.obs is not None)
    state = update_state(initial_state(ctx), obs, ctx)
    assert LEVELS[state["level"][0]] == 1.0
    b = ctx.batch_sizes[0][int(np.argmax(ctx.capacity[0]))]
    carry = ctx.carry(0, b)  # req/s n replicas carry within the SLO

    def fleet(need: float) -> int:
        return next(n for n, c in enumerate(carry) if c >= need - 1e-6)

    rate = predictive_size(state, ctx)
    d, s1 = decode_action(move_action(ctx, 0), state, ctx)
    assert d.replicas["l4"] == fleet(rate) and d.batch_size["l4"] == b
    d, s2 = decode_action(move_action(ctx, 3), s1, ctx)
    assert LEVELS[s2["level"][0]] == 1.3 and d.replicas["l4"] == fleet(1.3 * rate)
    json.dumps(s2)  # persistable by the live controller
    s = s2
    for _ in range(10):
        _, s = decode_action(move_action(ctx, 3), s, ctx)
    assert s["level"][0] == len(LEVELS) - 1  # stops at the top
    for _ in range(10):
        d, s = decode_action(move_action(ctx, -3), s, ctx)
    assert s["level"][0] == 0 and d.replicas["l4"] == 1  # level 0: down to min_replicas
    hot = dataclasses.replace(obs, arrivals=2 * obs.arrivals)
    s_hot = update_state(update_state(update_state(initial_state(ctx), hot, ctx), hot, ctx), hot, ctx)
    d_hot, _ = decode_action(move_action(ctx, 0), s_hot, ctx)
    assert d_hot.replicas["l4"] == fleet(predictive_size(s_hot, ctx)) > d.replicas["l4"]
    assert predictive_size(s_hot, ctx) == pytest.approx(2 * rate, rel=0.05)


@pytest.mark.parametrize("scenario,generator,rate", [("default", "mmpp", 200.0), ("mixed-large", "mmpp", 200.0),
                                                     ("mixed-large", "daily", 300.0)])
def test_predictive_sizing_prior_is_the_predictive_rule(scenario: str, generator: str, rate: float) -> None:
    """The untrained ``fill`` policy with ``predictive`` sizing decides as ``predictive`` (trend, learnt margin,
    the cheapest pool first and the next ones past its quota)."""
    sc = load_scenario(scenario)
    arr = short_arrivals(sc, generator, rate, 1200.0, seed=2)
    ctx = make_context(sc, measure_capacity(sc), sizing="predictive")
    a = simulate(sc, arr, FixedActionPolicy(ctx, move_action(ctx)), 3)
    b = simulate(sc, arr, make_policy("predictive", sc), 3)
    fleets = [w.applied.replicas for w in a.windows if w.applied]
    assert fleets == [w.applied.replicas for w in b.windows if w.applied]
    assert a.summary()["cost_usd"] == b.summary()["cost_usd"]
    if generator == "daily":  # peaks at 480 req/s: past both L4 quotas, so it spilled onto the A100
        peak = max(fleets, key=lambda f: f["a100"])
        assert peak["l4-spot"] == 6 and peak["l4"] == 3 and peak["a100"] >= 1


@pytest.mark.parametrize("scenario", ["default", "mixed-large"])
def test_crowd_sizing_prior_is_predictive_under_the_crowd_floor(scenario: str) -> None:
    """With ``sizing: crowd`` the untrained ``fill`` policy decides as ``predictive+crowd:3``; a lower K holds less."""
    sc = load_scenario(scenario)
    arr = short_arrivals(sc, "mmpp", 200.0, 1200.0, seed=2)
    ctx = make_context(sc, measure_capacity(sc), sizing="crowd")
    assert ctx.obs_size == make_context(sc, measure_capacity(sc), sizing="predictive").obs_size + 1
    assert ctx.crowd_factor == 3.0 and ctx.history >= ctx.calm_windows == 60
    a = simulate(sc, arr, FixedActionPolicy(ctx, move_action(ctx)), 3)
    b = simulate(sc, arr, make_policy("predictive+crowd:3", sc), 3)
    assert [w.applied.replicas for w in a.windows if w.applied] == [w.applied.replicas for w in b.windows if w.applied]
    assert a.summary()["cost_usd"] == b.summary()["cost_usd"]
    assert a.summary()["cost_usd"] > simulate(sc, arr, make_policy("predictive", sc), 3).summary()["cost_usd"]
    two = make_context(sc, measure_capacity(sc), sizing="crowd", crowd_factor=2.0)
    c = simulate(sc, arr, FixedActionPolicy(two, move_action(two)), 3)
    assert c.summary()["cost_usd"] < a.summary()["cost_usd"]
    # levels only trade the insurance: every level at 0 (after two moves down) still holds the forecast, i.e.
    # decides as ``predictive``
    down = move_action(ctx, -3)
    d = simulate(sc, arr, FixedActionPolicy(ctx, down), 3, guards=None)  # decoding, not the guards' step limits
    p = simulate(sc, arr, make_policy("predictive", sc), 3, guards=None)
    fleets = [w.applied.replicas for w in d.windows if w.applied]
    assert fleets[2:] == [w.applied.replicas for w in p.windows if w.applied][2:]
    with pytest.raises(ValueError, match="a burst guard needs sizing 'crowd'"):
        make_context(sc, measure_capacity(sc), sizing="predictive", burst_guard=2.0)


@pytest.mark.parametrize("spec", ["headroom:0", "headroom:x", "headroom:-2", "burst:0", "burst:x", "predictive:0"])
def test_bad_headroom_is_a_clear_error(spec: str) -> None:
    with pytest.raises(InputError, match="bad headroom"):
        make_policy(spec, load_scenario("default"))


def test_burst_guard_holds_the_crowd_insurance_until_the_load_has_been_calm_long_enough() -> None:
    """With a burst guard, a crowd policy that asks for every level at 0 and the smallest batch still decides
    as ``predictive+crowd:3`` while bursts keep coming, and as without the guard once the load has been calm
    for ``guard_calm_s``."""
    from autotune.rl.evaluation import MMPP_PARAMS
    from autotune.scenario import WorkloadSpec
    from autotune.workload.arrivals import build_arrivals

    sc = load_scenario("default")
    plain = make_context(sc, measure_capacity(sc), sizing="crowd")
    guarded = make_context(sc, measure_capacity(sc), sizing="crowd", burst_guard=2.0, guard_calm_s=600.0)
    assert guarded.guard_windows == 60 and guarded.obs_size == plain.obs_size
    down = move_action(plain, -3, batch=0)  # batch index 0: the smallest
    assert min(plain.batch_sizes[0]) < plain.batch_sizes[0][int(np.argmax(plain.capacity[0]))]

    spec = WorkloadSpec(kind="synthetic", generator="mmpp", mean_rate=300.0, duration_s=1200.0, params=MMPP_PARAMS)
    bursty = build_arrivals(sc.model_copy(update={"workload": spec}), 7)  # seed 5 has a 10-minute calm spell
    g = simulate(sc, bursty, FixedActionPolicy(guarded, down), 7)
    rule = simulate(sc, bursty, make_policy("predictive+crowd:3", sc), 7)
    held = [w for w in g.windows if w.decision and "burst guard" in w.decision.reason]
    assert len(held) == len([w for w in g.windows if w.decision])
    assert [w.applied.replicas for w in held] == [w.applied.replicas for w in rule.windows if w.applied]
    assert {w.applied.batch_size["l4"] for w in held} == {plain.batch_sizes[0][int(np.argmax(plain.capacity[0]))]}
    # the calm count starts again at each burst
    assert any("(burst guard: 0.0 of 10 min without a 2x burst)" in w.decision.reason for w in held[60:])
    assert {**g.summary(), "policy": ""} == {**rule.summary(), "policy": ""}  # same decisions, same episode
    unguarded = simulate(sc, bursty, FixedActionPolicy(plain, down), 7)
    assert [w.applied.replicas for w in unguarded.windows if w.applied] != [w.applied.replicas for w in held]

    steady = short_arrivals(sc, "poisson", 300.0, 1200.0, seed=5)
    g = simulate(sc, steady, FixedActionPolicy(guarded, down), 5)
    p = simulate(sc, steady, FixedActionPolicy(plain, down), 5)
    reasons = [w.decision.reason for w in g.windows if w.decision]
    assert all("without a 2x burst" in r for r in reasons[:59]) and not any("burst guard" in r for r in reasons[60:])
    assert [w.applied.replicas for w in g.windows if w.applied][62:] == \
        [w.applied.replicas for w in p.windows if w.applied][62:]


def test_a_policy_sizes_mixed_gpu_fleets_as_it_was_trained(tmp_path: Path) -> None:
    """mixed-large was trained with mixes added up and decodes so; a card trained with them measured decodes
    with them measured."""
    sc = load_scenario("mixed-large")
    assert load_policy(POLICIES / "mixed-large.zip", sc).ctx.mixed is None
    path = _copy("mixed-large", tmp_path)

    def measured(d: dict[str, Any]) -> None:
        d["decoding"]["mixed_capacity"] = d["hyperparameters"]["mixed_capacity"] = "measured"

    _edit_card(path, measured)
    assert load_policy(path, sc).ctx.mixed is not None
    _edit_card(path, _set("hyperparameters", "mixed_capacity", value="added"))
    with pytest.raises(InputError, match=re.escape("decoding.mixed_capacity: is 'measured', trained with 'added'")):
        load_policy(path, sc)
