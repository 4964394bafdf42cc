"""The gym env: checker, determinism, vector envs, masks, and reward accounting vs simulate()."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import autotune.rl  # noqa: F401  (registers the env id)
from autotune.rl import ENV_ID
from autotune.rl.actions import MOVES
from autotune.rl.env import RayServeClusterEnv, ideal_usd_per_hour
from autotune.rl.observation import GLOBAL_FEATURES, N_RATES, POOL_FEATURES, make_context
from autotune.scenario import load_scenario
from autotune.sim.capacity import measure_capacity
from autotune.sim.run import simulate
from tests.rl.helpers import FixedActionPolicy, move_action, short_arrivals


def rollout(env: RayServeClusterEnv, seed: int, steps: int) -> tuple[list[np.ndarray], list[float]]:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    seen, rewards = [obs], []
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        seen.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return seen, rewards


@pytest.mark.parametrize("scenario", ["default", "mixed"])
def test_check_env_passes(scenario: str) -> None:
    env = gym.make(ENV_ID, scenario=scenario, episode_s=300.0)
    check_env(env.unwrapped, skip_render_check=True)
    assert isinstance(env.action_space, gym.spaces.MultiDiscrete)
    pools = load_scenario(scenario).pools
    n_pools = len(pools)
    assert env.observation_space.shape == (GLOBAL_FEATURES + POOL_FEATURES * n_pools,)
    assert list(env.action_space.nvec[:2]) == [len(MOVES), max(len(p.batch_sizes) for p in pools)]
    crowd = gym.make(ENV_ID, scenario=scenario, episode_s=300.0, sizing="crowd")
    assert crowd.observation_space.shape == (GLOBAL_FEATURES + 1 + POOL_FEATURES * n_pools,)  # + the crowd floor


def test_same_seed_same_episode_and_other_seed_differs() -> None:
    a = RayServeClusterEnv("default", episode_s=600.0)
    b = RayServeClusterEnv("default", episode_s=600.0)
    obs_a, rew_a = rollout(a, 11, 40)
    obs_b, rew_b = rollout(b, 11, 40)
    assert a.episode is not None and b.episode is not None and a.episode.label == b.episode.label
    np.testing.assert_array_equal(np.stack(obs_a), np.stack(obs_b))
    assert rew_a == rew_b
    obs_c, _ = rollout(RayServeClusterEnv("default", episode_s=600.0), 12, 40)
    assert not np.array_equal(np.stack(obs_a[1:]), np.stack(obs_c[1:]))


def test_works_as_a_vector_env() -> None:
    vec = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", scenario="default", episode_s=300.0)
    obs, _ = vec.reset(seed=5)
    assert obs.shape == (2, vec.single_observation_space.shape[0])
    total = np.zeros(2)
    for _ in range(35):  # 300 s + 30 s drain = 33 windows: both envs finish and auto-reset
        obs, r, term, trunc, _ = vec.step(vec.action_space.sample())
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(r))
        total += r
    assert np.all(total < 0)
    vec.close()


def test_action_mask_forbids_what_bounds_forbid() -> None:
    sc = load_scenario("default")  # l4: min 1 replica; batch 32 cannot meet 100 ms
    env = RayServeClusterEnv(sc, episode_s=300.0)
    env.reset(seed=0)
    mask = env.action_masks()
    nvec = env.action_space.nvec
    move_mask, batch_mask = mask[: nvec[0]], mask[nvec[0]:]
    assert move_mask.all()  # level 0 on a pool with min_replicas 1 means "down to 1"
    assert list(batch_mask) == [True, True, True, True, True, False]  # batch sizes 1..16 ok, 32 not


def test_time_and_load_features_are_scale_free() -> None:
    """The same load shape at 30 and 900 req/s gives nearly the same trend features."""
    sc = load_scenario("default")
    feats = []
    for rate in (30.0, 900.0):
        env = RayServeClusterEnv(sc, randomize=False)
        arr = short_arrivals(sc, "poisson", rate, 300.0, seed=3)
        obs, _ = env.reset(seed=0, options={"arrivals": arr, "sim_seed": 0})
        for _ in range(6):
            obs, *_ = env.step(move_action(env.ctx))
        feats.append(obs[:N_RATES])
    np.testing.assert_allclose(feats[0], feats[1], atol=0.25)
    np.testing.assert_allclose(feats[1], 1.0, atol=0.1)


@pytest.mark.parametrize("scenario,generator,rate,sizing,move", [("default", "daily", 250.0, "predictive", 0),
                                                                 ("mixed", "mmpp", 400.0, "crowd", 0),
                                                                 ("mixed", "daily", 300.0, "predictive", 1)])
def test_reward_accounting_matches_whatif_summary(scenario: str, generator: str, rate: float, sizing: str,
                                                  move: int) -> None:
    """Per-step cost and on-time/missed counts add up to simulate()'s summary of the same episode, for a policy
    that moves every level by ``move`` each window."""
    sc = load_scenario(scenario)
    arr = short_arrivals(sc, generator, rate, 900.0, seed=21)
    env = RayServeClusterEnv(sc, randomize=False, sizing=sizing)  # type: ignore[arg-type]
    action = move_action(env.ctx, move)
    env.reset(seed=0, options={"arrivals": arr, "sim_seed": 21})
    cost = on_time = missed = arrivals = steps = 0
    reward = 0.0
    done = False
    while not done:
        _, r, done, _, info = env.step(action)
        cost += info["cost_usd"]
        on_time += info["on_time"]
        missed += info["missed"]
        arrivals += info["arrivals"]
        reward += r
        steps += 1
    summary = simulate(sc, arr, FixedActionPolicy(env.ctx, action), 21).summary()
    n = int(summary["requests"])
    assert arrivals == n and on_time + missed == n
    assert on_time == round(float(summary["slo_attainment"]) * n)
    assert cost == pytest.approx(float(summary["cost_usd"]), rel=1e-9)
    assert steps == int(np.ceil((arr.duration_s + sc.drain_s) / sc.control_interval_s)) - 1
    assert missed < n  # a sensible fixed policy meets most requests: the comparison is not vacuous
    assert reward < 0


def test_training_loads_come_from_the_scenarios_range() -> None:
    """live-demo trains on 1..15 req/s (what 8 local replicas carry), default on 10..1,000."""
    import re

    from autotune.rl.workloads import sample_training_episode

    for name, (lo, hi) in (("live-demo", (1.0, 15.0)), ("default", (10.0, 1000.0))):
        sc = load_scenario(name)
        assert sc.training.mean_rate_range == (lo, hi)
        rng = np.random.default_rng(0)
        rates = [float(re.search(r"@ ([0-9.]+) req/s", sample_training_episode(sc, rng, 120.0, 3600.0).label)[1])
                 for _ in range(40)]
        assert lo - 0.5 <= min(rates) and max(rates) <= hi + 0.5 and max(rates) > 3 * min(rates)
    env = RayServeClusterEnv("live-demo")
    env.reset(seed=0)
    assert env.episode is not None and env.episode.arrivals.duration_s == 600.0  # training.episode_s


def test_reward_cost_unit_spills_past_quotas_and_is_unchanged_where_none_binds() -> None:
    """The ideal fleet the cost term divides by: best price per req/s, until a quota binds (mixed-large)."""
    ctx = make_context(load_scenario("default"), measure_capacity(load_scenario("default")))
    assert ideal_usd_per_hour(ctx, 300.0) == pytest.approx(300.0 * ctx.best_efficiency())
    big = make_context(load_scenario("mixed-large"), measure_capacity(load_scenario("mixed-large")))
    spot, l4, a100 = (big.pools.index(n) for n in ("l4-spot", "l4", "a100"))
    caps = [max(c) for c in big.capacity]
    left = 400.0 - 6 * caps[spot] - 3 * caps[l4]  # both L4 quotas full: the rest on the A100
    want = 6 * big.price[spot] + 3 * big.price[l4] + left / caps[a100] * big.price[a100]
    assert ideal_usd_per_hour(big, 400.0) == pytest.approx(want)
    assert want > 1.5 * 400.0 * big.best_efficiency()  # what the A100 costs is not counted as waste


def test_slo_cap_bounds_one_windows_slo_term() -> None:
    """A fleet far too small misses whole windows: their SLO term is slo_weight x slo_cap, and a higher cap
    charges them more (the cap is the scenario's, or --set slo_cap)."""
    sc = load_scenario("default")
    arr = short_arrivals(sc, "poisson", 900.0, 300.0, seed=3)
    worst = {}
    for cap in (10.0, 1000.0):
        env = RayServeClusterEnv(sc, randomize=False, reward_weights_override={"slo_cap": cap})
        assert env.weights["slo_cap"] == cap
        env.reset(seed=0, options={"arrivals": arr, "sim_seed": 3})
        env._state["level"] = [0] * len(env.ctx.pools)  # every pool at its minimum: one L4 for 900 req/s
        terms, done = [], False
        while not done:
            _, _, done, _, info = env.step(move_action(env.ctx))
            terms.append(info["slo_term"])
        worst[cap] = max(terms)
    w = sc.reward.slo_weight
    assert worst[10.0] == pytest.approx(w * 10.0)
    assert w * 10.0 * 5 < worst[1000.0] <= w * 1000.0
