"""Trained-policy files: sha256 verified before loading, tampering refused, shipped policies run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from autotune.core.types import Observation, PoolObs
from autotune.errors import InputError
from autotune.paths import POLICIES
from autotune.registry import make_policy
from autotune.rl.policy import RLPolicy, load_policy, sha256_file
from autotune.scenario import load_scenario
from autotune.sim.capacity import measure_capacity
from autotune.sim.run import simulate
from tests.rl.helpers import short_arrivals

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


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_policy_card_matches_and_runs(name: str) -> None:
    path = POLICIES / f"{name}.zip"
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["sha256"] == sha256_file(path)
    assert card["scenario"] == name and card["timesteps"] > 0 and card["learning_curve"]
    assert {row["policy"] for row in card["evaluation"]} >= {"ray-default", "hpa", "oracle"}
    sc = load_scenario(name)
    pol = make_policy(str(path), sc)  # the same route whatif --policy takes
    assert isinstance(pol, RLPolicy)
    arr = short_arrivals(sc, "daily", SANITY_RATE[name], 600.0, seed=3)
    s = simulate(sc, arr, pol, 3).summary()
    assert s["requests"] == len(arr) and s["cost_usd"] > 0
    assert s["slo_attainment"] > 0.9  # a trained policy, not a random one


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
    card = path.with_suffix(".json")
    data = json.loads(card.read_text())
    data["sha256"] = "0" * 64
    card.write_text(json.dumps(data))
    with pytest.raises(InputError, match="refusing a modified policy file"):
        load_policy(path, load_scenario("default"))
    card.unlink()
    with pytest.raises(InputError, match="model card missing"):
        load_policy(path, load_scenario("default"))


@pytest.mark.parametrize("section,field,needle", [("action", "kind", "action.kind: unknown action kind 'sideways'"),
                                                  ("features", "sizing", "features.sizing: unknown sizing 'sideways'"),
                                                  ("features", "crowd_factor",
                                                   "features.crowd_factor: crowd_factor must be a number from 1")])
def test_unknown_action_kind_or_sizing_is_refused(tmp_path: Path, section: str, field: str, needle: str) -> None:
    path = _copy("default", tmp_path)
    card = path.with_suffix(".json")
    data = json.loads(card.read_text())
    data.setdefault(section, {})[field] = "sideways"
    card.write_text(json.dumps(data))
    with pytest.raises(InputError, match=needle):
        load_policy(path, load_scenario("default"))


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


def test_action_decoding_is_symmetric_and_legacy_cards_keep_their_limit(tmp_path: Path) -> None:
    """Scale-down is as immediate as scale-up (same fleet under sampled and deterministic actions);
    a policy trained under the old 10%/window scale-down limit is decoded with it, read from its card."""
    from autotune.rl import features as F
    from tests.rl.helpers import headroom_action

    sc = load_scenario("default")
    ctx = F.make_context(sc, measure_capacity(sc), action_kind="absolute")
    assert ctx.max_down_fraction == F.MAX_DOWN_FRACTION == 1.0
    arr = short_arrivals(sc, "poisson", 300.0, 60.0, seed=1)
    obs = next(w.obs for w in simulate(sc, arr, make_policy("ray-default", sc), 1).windows if w.obs is not None)
    import dataclasses

    big = dataclasses.replace(obs.pools[0], running=20, starting=0, pending=0)  # target 20, far above the need
    obs = dataclasses.replace(obs, pools=(big, *obs.pools[1:]))
    state = F.update_state(F.initial_state(ctx), obs, ctx)
    act = headroom_action(ctx, 1.0, pool=0)
    up_to_need = F.decode_action(act, obs, state, ctx)[0].replicas[ctx.pools[0]]
    assert up_to_need < 18  # straight down to the need, not 20 -> 18
    legacy = F.make_context(
        sc, measure_capacity(sc), F.max_down_fraction_of({"action": {}}), F.action_kind_of({"action": {}}))
    assert legacy.max_down_fraction == F.LEGACY_MAX_DOWN_FRACTION and legacy.action_kind == "absolute"
    assert F.decode_action(act, obs, state, legacy)[0].replicas[ctx.pools[0]] == 18
    for name in SHIPPED:  # load_policy decodes as the card says the policy was trained
        card = json.loads((POLICIES / f"{name}.json").read_text())
        pol = load_policy(POLICIES / f"{name}.zip", load_scenario(name))
        assert pol.ctx.max_down_fraction == F.max_down_fraction_of(card)
        assert pol.ctx.action_kind == F.action_kind_of(card)


def test_moves_keep_a_headroom_level_in_the_state_and_follow_the_load() -> None:
    """``moves``: the level persists across windows, moves along the ladder and stops at its ends;
    the target is ceil(level x forecast / capacity), so at a held level the fleet follows the load."""
    import dataclasses

    from autotune.rl import features as F

    sc = load_scenario("default")
    ctx = F.make_context(sc, measure_capacity(sc))
    assert ctx.action_kind == "moves"
    arr = short_arrivals(sc, "poisson", 300.0, 60.0, seed=1)
    obs = next(w.obs for w in simulate(sc, arr, make_policy("ray-default", sc), 1).windows if w.obs is not None)
    state = F.update_state(F.initial_state(ctx), obs, ctx)
    assert F.LEVELS[state["level"][0]] == F.INITIAL_LEVEL == ctx.initial_level
    b = int(max(range(len(ctx.capacity[0])), key=lambda k: ctx.capacity[0][k]))
    carry = ctx.carry(0, ctx.batch_sizes[0][b])  # req/s n replicas carry within the SLO

    def fleet(need: float) -> int:
        return next(n for n, c in enumerate(carry) if c >= need - 1e-6)

    def act(move: int) -> list[int]:
        return [F.MOVES.index(move), b]

    d, s1 = F.decode_action(act(0), obs, state, ctx)
    rate = F.forecast_rate(state)
    assert d.replicas["l4"] == fleet(1.2 * rate)
    d, s2 = F.decode_action(act(3), obs, s1, ctx)
    up = F.LEVELS[F.LEVELS.index(1.2) + 3]
    assert F.LEVELS[s2["level"][0]] == up and d.replicas["l4"] == fleet(up * rate)
    json.dumps(s2)  # persistable by the live controller
    s = s2
    for _ in range(10):
        _, s = F.decode_action(act(3), obs, s, ctx)
    assert s["level"][0] == len(F.LEVELS) - 1  # stops at the top
    for _ in range(10):
        d, s = F.decode_action(act(-3), obs, s, ctx)
    assert s["level"][0] == 0 and d.replicas["l4"] == 1  # level 0: down to min_replicas
    # the same level, twice the load: about twice the replicas
    hot = dataclasses.replace(obs, arrivals=2 * obs.arrivals)
    s_hot = F.update_state(F.update_state(F.update_state(F.initial_state(ctx), hot, ctx), hot, ctx), hot, ctx)
    d_hot, _ = F.decode_action(act(0), hot, s_hot, ctx)
    assert d_hot.replicas["l4"] == fleet(1.2 * F.forecast_rate(s_hot))
    assert F.forecast_rate(s_hot) == pytest.approx(2 * obs.arrival_rate)


def test_headroom_rule_is_the_moves_prior_on_one_pool() -> None:
    """``headroom`` decides exactly as an untrained ``moves`` policy: 1.2x on the cheapest pool, by fleet capacity.

    (With several pools ``moves`` leaves the others at their minimum; ``fill`` is the multi-pool rule.)
    """
    from autotune.rl import features as F
    from tests.rl.helpers import FixedActionPolicy, stay_action

    sc = load_scenario("default")
    arr = short_arrivals(sc, "mmpp", 250.0, 600.0, seed=4)
    ctx = F.make_context(sc, measure_capacity(sc), action_kind="moves")
    a = simulate(sc, arr, FixedActionPolicy(ctx, stay_action(ctx)), 3)
    b = simulate(sc, arr, make_policy("headroom", sc), 3)
    assert [w.applied.replicas for w in a.windows if w.applied] == [w.applied.replicas for w in b.windows if w.applied]
    assert a.summary()["cost_usd"] == b.summary()["cost_usd"]


def test_absolute_kind_sizes_by_the_per_replica_capacity_it_was_trained_with() -> None:
    """The shipped policies' action kind keeps its meaning: ceil(M x forecast / group-of-4 capacity)."""
    from autotune.rl import features as F
    from tests.rl.helpers import FixedActionPolicy, headroom_action

    sc = load_scenario("default")
    ctx = F.make_context(sc, measure_capacity(sc), action_kind="absolute")
    pol = FixedActionPolicy(ctx, headroom_action(ctx, 1.6))
    cap = max(ctx.capacity[0])
    for rate in (20.0, 150.0, 700.0):
        obs = Observation(0.0, 10.0, int(rate * 10), int(rate * 10), 0, 20.0, 30.0, 40.0, 1.0, 0,
                          (PoolObs("l4", 1, 0, 0, 0, 8, 1.0),))
        d, _ = pol.decide(obs, pol.initial_state())
        assert d.replicas["l4"] == max(1, int(np.ceil(1.6 * rate / cap - 1e-6)))


def test_fill_prior_is_the_headroom_rule_with_spill_over_at_quotas() -> None:
    """``fill`` at its initial levels decides as ``headroom``: cheapest pool first, the rest past its quota."""
    from autotune.rl import features as F
    from tests.rl.helpers import FixedActionPolicy, stay_action

    sc = load_scenario("mixed-large")
    arr = short_arrivals(sc, "daily", 300.0, 900.0, seed=2)  # peaks at 480 req/s: past both L4 quotas
    ctx = F.make_context(sc, measure_capacity(sc), action_kind="fill")
    a = simulate(sc, arr, FixedActionPolicy(ctx, stay_action(ctx)), 3)
    b = simulate(sc, arr, make_policy("headroom", sc), 3)
    fleets = [w.applied.replicas for w in a.windows if w.applied]
    assert fleets == [w.applied.replicas for w in b.windows if w.applied]
    assert a.summary()["cost_usd"] == b.summary()["cost_usd"]
    # it spilled: spot at its quota, on-demand L4 next, then the A100
    peak = max(fleets, key=lambda f: f["a100"])
    assert peak["l4-spot"] == 6 and peak["l4"] == 3 and peak["a100"] >= 1
    # the moves kind at its initial levels uses the cheapest pool only, capped at its quota
    m = F.make_context(sc, measure_capacity(sc), action_kind="moves")
    c = simulate(sc, arr, FixedActionPolicy(m, stay_action(m)), 3)
    assert max(w.applied.replicas["a100"] for w in c.windows if w.applied) == 0


@pytest.mark.parametrize("scenario", ["default", "mixed-large"])
def test_burst_sizing_prior_is_the_burst_rule(scenario: str) -> None:
    """With ``sizing: burst`` the untrained level policy decides as ``burst`` (bursts remembered, spill-over)."""
    from autotune.rl import features as F
    from tests.rl.helpers import FixedActionPolicy, stay_action

    sc = load_scenario(scenario)
    arr = short_arrivals(sc, "mmpp", 200.0, 1200.0, seed=2)
    ctx = F.make_context(sc, measure_capacity(sc), action_kind="fill", sizing="burst")
    assert ctx.obs_size == F.make_context(sc, measure_capacity(sc), action_kind="fill").obs_size + 2
    a = simulate(sc, arr, FixedActionPolicy(ctx, stay_action(ctx)), 3)
    b = simulate(sc, arr, make_policy("burst", sc), 3)
    assert [w.applied.replicas for w in a.windows if w.applied] == [w.applied.replicas for w in b.windows if w.applied]
    assert a.summary()["cost_usd"] == b.summary()["cost_usd"]
    h = simulate(sc, arr, make_policy("headroom", sc), 3)
    assert a.summary()["cost_usd"] > h.summary()["cost_usd"]  # it did hold burst capacity


@pytest.mark.parametrize("scenario", ["default", "mixed-large"])
def test_predictive_sizing_prior_is_the_predictive_rule(scenario: str) -> None:
    """With ``sizing: predictive`` the untrained ``fill`` policy decides as ``predictive`` (trend, learnt margin)."""
    from autotune.rl import features as F
    from tests.rl.helpers import FixedActionPolicy, stay_action

    sc = load_scenario(scenario)
    arr = short_arrivals(sc, "mmpp", 200.0, 1200.0, seed=2)
    ctx = F.make_context(sc, measure_capacity(sc), action_kind="fill", sizing="predictive")
    assert ctx.obs_size == F.make_context(
        sc, measure_capacity(sc), action_kind="fill").obs_size + 2 and ctx.initial_level == 1.0
    a = simulate(sc, arr, FixedActionPolicy(ctx, stay_action(ctx)), 3)
    b = simulate(sc, arr, make_policy("predictive", sc), 3)
    assert [w.applied.replicas for w in a.windows if w.applied] == [w.applied.replicas for w in b.windows if w.applied]
    assert a.summary()["cost_usd"] == b.summary()["cost_usd"]


@pytest.mark.parametrize("scenario", ["default", "mixed-large"])
def test_crowd_sizing_prior_is_predictive_under_the_crowd_floor(scenario: str) -> None:
    """With ``sizing: crowd`` the untrained ``fill`` policy decides as ``predictive+crowd:3``; a lower K holds less."""
    from autotune.rl import features as F
    from tests.rl.helpers import FixedActionPolicy, stay_action

    sc = load_scenario(scenario)
    arr = short_arrivals(sc, "mmpp", 200.0, 1200.0, seed=2)
    ctx = F.make_context(sc, measure_capacity(sc), action_kind="fill", sizing="crowd")
    assert ctx.obs_size == F.make_context(
        sc, measure_capacity(sc), action_kind="fill", sizing="predictive").obs_size + 1
    assert ctx.crowd_factor == 3.0 and ctx.history >= ctx.calm_windows == 60
    a = simulate(sc, arr, FixedActionPolicy(ctx, stay_action(ctx)), 3)
    b = simulate(sc, arr, make_policy("predictive+crowd:3", sc), 3)
    assert [w.applied.replicas for w in a.windows if w.applied] == [w.applied.replicas for w in b.windows if w.applied]
    assert a.summary()["cost_usd"] == b.summary()["cost_usd"]
    assert a.summary()["cost_usd"] > simulate(sc, arr, make_policy("predictive", sc), 3).summary()["cost_usd"]
    two = F.make_context(sc, measure_capacity(sc), action_kind="fill", sizing="crowd", crowd_factor=2.0)
    c = simulate(sc, arr, FixedActionPolicy(two, stay_action(two)), 3)
    assert c.summary()["cost_usd"] < a.summary()["cost_usd"]
    # levels only trade the insurance: every level at 0 (after two moves down) still holds the forecast, i.e.
    # decides as ``predictive``
    down = [x for i in range(len(ctx.pools)) for x in (F.MOVES.index(-3), int(np.argmax(ctx.capacity[i])))]
    d = simulate(sc, arr, FixedActionPolicy(ctx, down), 3, guards=None)  # decoding, not the guards' step limits
    p = simulate(sc, arr, make_policy("predictive", sc), 3, guards=None)
    fleets = [w.applied.replicas for w in d.windows if w.applied]
    assert fleets[2:] == [w.applied.replicas for w in p.windows if w.applied][2:]
    with pytest.raises(ValueError, match="needs action kind 'fill'"):
        F.make_context(sc, measure_capacity(sc), action_kind="moves", sizing="crowd")


@pytest.mark.parametrize("spec", ["headroom:0", "headroom:x", "headroom:-2", "burst:0", "burst:x", "predictive:0"])
def test_bad_headroom_is_a_clear_error(spec: str) -> None:
    with pytest.raises(InputError, match="bad headroom"):
        make_policy(spec, load_scenario("default"))


def test_burst_guard_holds_the_crowd_insurance_until_the_load_has_been_calm_long_enough() -> None:
    """With a burst guard, a crowd policy that asks for every level at 0 and the smallest batch still decides
    as ``predictive+crowd:3`` while bursts keep coming, and as without the guard once the load has been calm
    for ``guard_calm_s``."""
    from autotune.rl import features as F
    from autotune.rl.evaluation import MMPP_PARAMS
    from autotune.scenario import WorkloadSpec
    from autotune.workload.arrivals import build_arrivals
    from tests.rl.helpers import FixedActionPolicy

    sc = load_scenario("default")
    plain = F.make_context(sc, measure_capacity(sc), action_kind="fill", sizing="crowd")
    guarded = F.make_context(
        sc, measure_capacity(sc), action_kind="fill", sizing="crowd", burst_guard=2.0, guard_calm_s=600.0)
    assert guarded.guard_windows == 60 and guarded.obs_size == plain.obs_size
    down = [x for _ in plain.pools for x in (F.MOVES.index(-3), 0)]  # batch index 0: the smallest
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


@pytest.mark.parametrize("field,value,needle", [("burst_guard", 1.0, "burst_guard must be 0 (off) or a number above 1"),
                                                ("burst_guard", "x", "burst_guard must be 0 (off)"),
                                                ("guard_calm_s", 0, "guard_calm_s must be seconds, above 0")])
def test_bad_burst_guard_in_a_card_is_refused(tmp_path: Path, field: str, value: object, needle: str) -> None:
    path = _copy("default", tmp_path)
    card = path.with_suffix(".json")
    data = json.loads(card.read_text())
    data["features"][field] = value
    card.write_text(json.dumps(data))
    with pytest.raises(InputError, match=re.escape(f"features.{field}: {needle}")):
        load_policy(path, load_scenario("default"))


def test_a_policy_sizes_mixed_gpu_fleets_as_it_was_trained(tmp_path: Path) -> None:
    """Cards before session 10 (no features.mixed_capacity) decode with mixes added up, as they were trained;
    new cards say "measured"; anything else is refused naming the field."""
    sc = load_scenario("mixed-large")
    assert load_policy(POLICIES / "mixed-large.zip", sc).ctx.mixed is None  # trained with mixes added up
    path = _copy("mixed-large", tmp_path)
    card = path.with_suffix(".json")
    data = json.loads(card.read_text())
    data["features"]["mixed_capacity"] = "measured"
    card.write_text(json.dumps(data))
    assert load_policy(path, sc).ctx.mixed is not None
    data["features"]["mixed_capacity"] = "modelled"
    card.write_text(json.dumps(data))
    with pytest.raises(InputError, match=re.escape("features.mixed_capacity: mixed_capacity must be")):
        load_policy(path, sc)
