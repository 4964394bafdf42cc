"""A short training run learns something, and the CLI plug-in behaves (exit codes, no heavy imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autotune.rl.card import ModelCard
from autotune.rl.config import TrainConfig
from autotune.rl.env import RayServeClusterEnv
from autotune.rl.observation import features, make_context
from autotune.rl.policy import RLPolicy, load_policy
from autotune.rl.train import GUARD_TOLERANCE, Selection, train
from autotune.scenario import load_scenario
from autotune.sim.capacity import measure_capacity
from tests.rl.helpers import short_arrivals


def episode_return(env: RayServeClusterEnv, act, arrivals, seed: int) -> float:  # type: ignore[no-untyped-def]
    env.reset(seed=seed, options={"arrivals": arrivals, "sim_seed": seed})
    total, done = 0.0, False
    while not done:
        _, r, done, _, _ = env.step(act(env))
        total += r
    return total


@pytest.mark.slow
def test_short_training_beats_random_policy() -> None:
    sc = load_scenario("default")
    result = train(sc, 4096, seed=1, config=TrainConfig(n_envs=2, episode_s=600.0, n_steps=256, batch_size=128),
                   eval_every=10**9, n_val=1, progress=False, log=lambda s: None)
    assert result.curve and result.wall_s > 0
    pol = RLPolicy(result.model, make_context(sc, measure_capacity(sc)))
    env = RayServeClusterEnv(sc, randomize=False)
    rng = np.random.default_rng(0)

    def random_action(e: RayServeClusterEnv) -> np.ndarray:
        mask = e.action_masks()
        out, start = [], 0
        for n in e.action_space.nvec:
            out.append(rng.choice(np.flatnonzero(mask[start:start + n])))
            start += n
        return np.asarray(out)

    def trained_action(e: RayServeClusterEnv) -> np.ndarray:
        x = features(e._obs, e._state, e.ctx)  # type: ignore[arg-type]
        a, _ = pol.model.predict(x, deterministic=True, action_masks=e.action_masks())
        return a

    episodes = [short_arrivals(sc, g, r, 900.0, seed=s) for g, r, s in (("daily", 300.0, 1), ("mmpp", 120.0, 2))]
    trained = np.mean([episode_return(env, trained_action, a, k) for k, a in enumerate(episodes)])
    rand = np.mean([episode_return(env, random_action, a, k) for k, a in enumerate(episodes)])
    assert trained > rand


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotune.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_importing_the_cli_plugin_loads_no_torch_or_ray() -> None:
    code = ("import sys, autotune.rl.cli; "
            "bad = [m for m in ('torch', 'ray', 'stable_baselines3') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("args,needle", [(["--timesteps", "0"], "--timesteps: must be positive"),
                                         (["--out", "x.pt"], "--out: must end in .zip"),
                                         (["--val-episodes", "0"], "--val-episodes: must be positive"),
                                         (["--scenario", "nope"], "no such scenario"),
                                         (["--set", "learning_rat=1"], "--set: expected KEY=VALUE"),
                                         (["--set", "action_kind=moves"], "--set: action_kind must be one of"),
                                         (["--set", "sizing=forecast"], "--set: sizing must be one of"),
                                         (["--set", "burst_guard=2"], "--set: burst_guard needs sizing=crowd"),
                                         (["--set", "sizing=crowd", "--set", "burst_guard=1"],
                                          "--set: burst_guard must be 0 (off) or a number above 1"),
                                         (["--set", "n_steps=many"], "--set: n_steps must be a valid integer"),
                                         (["--set", "selection=lucky"], "--set: selection must be one of"),
                                         (["--set", "slo_weight=-1"], "--set: slo_weight must be a number"),
                                         (["--set", "slo_cap=0"], "--set: slo_cap must be a number > 0"),
                                         (["--set", "mixed_capacity=modelled"], "--set: mixed_capacity must be"),
                                         (["--val-bursts", "-1"], "--val-bursts: must be 0 or more"),
                                         (["--val-families", "4"], "--val-families: must be 0..3")])
def test_train_bad_input_exits_2_with_one_line(args: list[str], needle: str) -> None:
    res = run_cli("train", *args)
    assert res.returncode == 2
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_training_measures_mixed_gpu_fleets_unless_told_to_add_them_up() -> None:
    from autotune.rl.env import RayServeClusterEnv

    assert RayServeClusterEnv("mixed").ctx.mixed is not None  # the default: measured, as the rules size them
    assert RayServeClusterEnv("mixed", mixed_capacity="added").ctx.mixed is None
    with pytest.raises(ValueError, match="mixed_capacity must be"):
        RayServeClusterEnv("mixed", mixed_capacity="modelled")


def test_default_validation_covers_bursts_a_ramp_a_smooth_high_load_and_the_trained_families() -> None:
    """The guard protects only what validation covers: by default a ramp, a smooth load, five bursty loads,
    synthetic and real crowds and a per-second spiky stream."""
    from autotune.core.burst import of_times
    from autotune.rl.evaluation import VAL_BURSTS, VAL_EPISODES, VAL_FAMILIES, validation_episodes
    from autotune.rl.workloads import TRAIN_SEED_BASE

    sc = load_scenario("default")
    eps = validation_episodes(sc)
    gens = [ep.label.split("@")[0] for ep in eps]
    assert len(eps) == VAL_EPISODES + VAL_BURSTS + len(VAL_FAMILIES) == 13
    assert {"mmpp", "flash", "ramp", "poisson", "synthetic-crowds", "spiky", "worldcup-crowds"} <= set(gens)
    assert gens.count("mmpp") == 5
    seeds = {ep.seed for ep in eps}
    assert len(seeds) == 13 and min(seeds) >= 5000 and max(seeds) < TRAIN_SEED_BASE  # disjoint from 0..999
    rates = sorted({float(ep.label.split("@")[1].split("{")[0]) for ep in eps if ep.label.startswith("mmpp")})
    assert rates == [150.0, 300.0, 600.0]
    assert [ep.label for ep in validation_episodes(sc, bursts=0, families=0)] == [
        ep.label for ep in eps[:VAL_EPISODES]]
    spiky = next(ep for ep in eps if ep.label.startswith("spiky"))
    t = spiky.arrivals.times
    assert dict(of_times(t, 0.0, 600.0))[1.0] > 2.0  # the spiky family, not a Poisson stand-in
    again = validation_episodes(sc)
    assert all(np.array_equal(a.arrivals.times, b.arrivals.times) for a, b in zip(eps, again, strict=True))


def test_validation_episodes_are_as_long_as_training_episodes() -> None:
    from autotune.rl.train import validation_set

    sc = load_scenario("default")
    assert {ep.arrivals.duration_s for ep in validation_set(sc, 6, TrainConfig(), 4)} == {sc.training.episode_s}
    long = validation_set(sc, 2, TrainConfig(episode_s=3600.0), 1)
    assert len(long) == 2 + 1 + 3 and {ep.arrivals.duration_s for ep in long} == {3600.0}


@pytest.mark.slow
def test_train_cli_writes_zip_and_verifiable_card(tmp_path: Path) -> None:
    out = tmp_path / "tiny.zip"
    res = run_cli("train", "--scenario", "default", "--timesteps", "512", "--eval-every", "512", "--out", str(out),
                  "--val-episodes", "1", "--val-bursts", "0", "--val-families", "0", "--no-progress",
                  "--set", "sizing=crowd",
                  "--set", "burst_guard=2", "--set", "n_steps=128", "--set", "slo_weight=2.5",
                  "--set", "mixed_capacity=added")
    assert res.returncode == 0, res.stderr
    card = ModelCard.model_validate_json(out.with_suffix(".json").read_text())
    assert card.policy == "tiny" and card.timesteps == 512 and card.learning_curve[0].timesteps >= 0
    assert card.hyperparameters.n_steps == 128 and card.hyperparameters.episode_s == 1800.0
    assert card.reward_weights.slo_weight == 2.5
    d = card.decoding
    assert (d.action_kind, d.sizing, d.crowd_factor, d.mixed_capacity) == ("fill", "crowd", 3.0, "added")
    assert d.burst_guard is not None and (d.burst_guard.ratio, d.burst_guard.in_training) == (2.0, True)
    # rerunnable into policies/, whatever --out said; the keys that differ from the defaults, and the decoding's
    cmd = card.trained_from.command
    assert cmd.startswith("autotune train --scenario default --timesteps 512 --seed 0 --eval-every 512 "
                          "--val-episodes 1 --val-bursts 0 --val-families 0 --out policies/tiny.zip ")
    for arg in ("--set sizing=crowd", "--set burst_guard=2.0", "--set n_steps=128", "--set mixed_capacity=added",
                "--set slo_weight=2.5"):
        assert arg in cmd
    assert str(tmp_path) not in cmd and "--no-progress" not in cmd
    assert [e.label for e in card.validation_episodes] == [e.label for e in card.evaluation_episodes]
    sel = card.selection  # guarded by default: floors from the step-0 prior, and whether a checkpoint kept them
    assert sel.rule == "guarded" and sel.floors is not None and len(sel.floors) == 1
    assert sel.shipped in card.learning_curve and sel.shipped.learned
    pol = load_policy(out, load_scenario("default"))  # validates and verifies
    assert pol.ctx.sizing == "crowd" and pol.ctx.burst_guard == 2.0
    assert pol.model.observation_space.shape == (d.observation_size,)


def _point(score: float, slo: list[float]) -> dict[str, object]:
    return {"score": score, "episode_slo_after_warmup": slo}


def test_guarded_selection_never_ships_a_checkpoint_below_the_prior_on_any_episode() -> None:
    sel = Selection(guarded=True, target=0.99)
    sel.offer(_point(5.0, [0.995, 0.95]), learned=False)  # the prior: floors 0.99 - tol, 0.95 - tol
    assert sel.guard is not None and sel.guard["floors"] == pytest.approx([0.99 - GUARD_TOLERANCE,
                                                                          0.95 - GUARD_TOLERANCE])
    cheap = _point(1.0, [1.0, 0.90])  # best score: saves a lot on episode 1 by missing more on episode 2
    assert sel.offer(cheap, learned=True) == (True, False)
    assert sel.best is cheap and not sel.guard["kept"]  # nothing kept the floors yet: fall back to the score
    safe = _point(3.0, [0.9905, 0.951])
    assert sel.offer(safe, learned=True) == (False, True)
    assert sel.best is safe and sel.guard["kept"]
    assert sel.offer(_point(0.5, [0.97, 0.99]), learned=True) == (True, False)  # below the target floor
    assert sel.best is safe
    better = _point(2.0, [0.99, 0.96])
    assert sel.offer(better, learned=True) == (False, True) and sel.best is better


def test_score_selection_ships_the_lowest_score() -> None:
    sel = Selection(guarded=False, target=0.99)
    sel.offer(_point(5.0, [1.0]), learned=False)
    assert sel.guard is None and sel.best is None  # the step-0 prior is never eligible
    low = _point(1.0, [0.5])
    sel.offer(_point(2.0, [1.0]), learned=True)
    sel.offer(low, learned=True)
    assert sel.best is low
