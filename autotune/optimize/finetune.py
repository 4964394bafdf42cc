"""``fine-tuned``: the shipped trained policy, trained further on the choose part of the user's traffic.

The shipped zip is loaded with ``MaskablePPO.load`` and PPO continues on episodes cut at random from the choose
part (each from the scenario's initial fleet), under the reward weights and the decoding of its model card, for a
small step budget. Checkpoints are validated on the choose part's slices and selected as ``autotune train``
selects (:class:`autotune.rl.train.Selection`, guarded: the lowest score among learned checkpoints keeping the
shipped policy's SLO on every slice). The result is a zip and a model card of the same format, whose
``trained_from.command`` is the ``autotune optimize`` command that fine-tuned it.

:func:`fine_tune` takes and returns plain data (bytes and text), so it runs as a Ray task anywhere.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from autotune.optimize.candidates import Candidate
from autotune.workload.arrivals import Arrivals

Tick = Callable[[int, int], None]  # (steps done, steps asked)
N_ENVS = 2  # two shared cores


def min_steps(card_text: str) -> int:
    """One PPO update: a shorter budget learns nothing."""
    h = json.loads(card_text)["hyperparameters"]
    return int(h["n_steps"]) * N_ENVS


def _episode_windows(part: Arrivals, episode_s: float, step_s: float, rng: np.random.Generator) -> Arrivals:
    span = min(episode_s, part.duration_s)
    t0 = round(float(rng.uniform(0.0, part.duration_s - span)) / step_s) * step_s
    t1 = min(t0 + span, part.duration_s)
    lo, hi = np.searchsorted(part.times, [t0, t1])
    return Arrivals(part.times[lo:hi] - t0, part.tokens[lo:hi], float(t1 - t0), f"{part.source}[{t0:g}:{t1:g}s]")


def fine_tune(scenario_json: str, shipped: Candidate, part_times: np.ndarray, part_tokens: np.ndarray,
              part_duration_s: float, part_source: str, val: list[tuple[str, np.ndarray, np.ndarray, float]],
              steps: int, seed: int, command: str, name: str = "fine-tuned",
              tick: Tick | None = None) -> tuple[bytes, str]:
    """Fine-tune ``shipped`` (a zip candidate) for ``steps`` on the part; validate on ``val`` (label, times,
    tokens, duration); return the chosen checkpoint's zip bytes and its model card's JSON."""
    import gymnasium as gym
    import sb3_contrib
    import stable_baselines3
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from autotune.registry import make_policy
    from autotune.rl.card import (
        Episode,
        EvaluationRow,
        ShippedSelection,
        TrainingData,
        Versions,
        parse_card,
        sha256_file,
    )
    from autotune.rl.env import RayServeClusterEnv
    from autotune.rl.evaluation import EvalEpisode, comparison_table, run_policy
    from autotune.rl.observation import GUARD_CALM_S
    from autotune.rl.policy import RLPolicy
    from autotune.rl.train import Selection, _checkpoint, _validate
    from autotune.scenario import Scenario
    from autotune.sim.capacity import measure_capacity

    torch.set_num_threads(1)
    sc = Scenario.model_validate_json(scenario_json)
    card = parse_card(json.loads(shipped.card_text), shipped.spec)
    part = Arrivals(part_times, part_tokens, part_duration_s, part_source)
    episodes = [EvalEpisode(label, Arrivals(t, k, d, label), 0) for label, t, k, d in val]
    cap = measure_capacity(sc)
    d, cfg, w = card.decoding, card.hyperparameters, card.reward_weights
    reward = {"cost_weight": w.cost_weight, "slo_weight": w.slo_weight, "churn_weight": w.churn_weight,
              "slo_cap": w.slo_cap}
    rsc = sc.model_copy(update={"reward": sc.reward.model_copy(update=reward)})
    ctx = d.context(sc, cap)
    g = d.burst_guard
    env_options: dict[str, Any] = {"sizing": d.sizing, "burst_guard": g.ratio if g else 0.0,
                                   "guard_calm_s": g.calm_s if g else GUARD_CALM_S,
                                   "mixed_capacity": d.mixed_capacity, "capacity": cap}
    if d.crowd_factor is not None:
        env_options["crowd_factor"] = d.crowd_factor
    episode_s = float(cfg.episode_s or sc.training.episode_s)

    class UserTraffic(gym.Wrapper):
        """Every reset: a random span of the choose part, from the scenario's initial fleet."""

        def __init__(self, env: gym.Env, rng: np.random.Generator) -> None:
            super().__init__(env)
            self.rng = rng

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
            arr = _episode_windows(part, episode_s, sc.control_interval_s, self.rng)
            return self.env.reset(seed=seed, options={"arrivals": arr,
                                                      "sim_seed": int(self.rng.integers(0, 2**31))})

    def make(i: int) -> Callable[[], Any]:
        def thunk() -> Any:
            env = RayServeClusterEnv(sc, randomize=False, episode_s=episode_s, reward_weights_override=reward,
                                     **env_options)
            wrapped = Monitor(UserTraffic(env, np.random.default_rng([seed, i, 0xF1])))
            wrapped.reset(seed=seed * 1000 + i)
            return wrapped
        return thunk

    vec = VecNormalize(DummyVecEnv([make(i) for i in range(N_ENVS)]), norm_obs=False, norm_reward=True,
                       gamma=cfg.gamma)
    src = shipped.materialize()
    model = MaskablePPO.load(src, env=vec, device="cpu")
    model.set_random_seed(seed)
    refs = [run_policy(sc, make_policy("ray-default", sc, cap), ep) for ep in episodes]
    selection = Selection(True, sc.slo.target)
    curve: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="autotune-finetune-"))
    best_kept, best_any = tmp / "best.zip", tmp / "best-score.zip"
    t0 = time.monotonic()
    every = max(steps // 2, model.n_steps * N_ENVS)

    class Periodic(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_eval = 0
            self.last = -1

        def _on_step(self) -> bool:
            if tick is not None:
                tick(min(self.num_timesteps, steps), steps)
            if self.num_timesteps >= self.next_eval:
                self.next_eval += every
                self.evaluate()
            return True

        def evaluate(self) -> None:
            if self.num_timesteps == self.last:
                return
            self.last = self.num_timesteps
            v = _validate(rsc, self.model, ctx, episodes, refs)
            point: dict[str, Any] = {"timesteps": int(self.num_timesteps), "wall_s": time.monotonic() - t0, **v,
                                     "learned": self.num_timesteps >= model.n_steps * N_ENVS}
            curve.append(point)
            new_any, new_kept = selection.offer(point, bool(point["learned"]))
            if new_any:
                self.model.save(best_any)
            if new_kept:
                self.model.save(best_kept)

        def _on_training_end(self) -> None:
            self.evaluate()

    model.learn(total_timesteps=steps, callback=Periodic(), reset_num_timesteps=True)
    wall = time.monotonic() - t0
    kept = selection.guard is not None and selection.guard["kept"]
    chosen = best_kept if kept else best_any
    final = MaskablePPO.load(chosen, device="cpu")
    out = tmp / f"{name}.zip"
    final.save(out)
    table = comparison_table(sc, RLPolicy(final, ctx, name=f"rl:{name}"), episodes, baselines=["ray-default"])
    val_eps = [Episode(label=e.label, seed=e.seed) for e in episodes]
    td = card.training_data
    assert selection.best is not None
    data = card.model_dump()
    data.update(
        policy=name,
        versions=Versions(python=platform.python_version(), torch=torch.__version__,
                          stable_baselines3=stable_baselines3.__version__,
                          sb3_contrib=sb3_contrib.__version__).model_dump(),
        trained_from={"command": command, "code_commit": None},
        timesteps=steps, seed=seed, wall_time_s=round(wall, 1),
        training_data=TrainingData(generators=td.generators, mean_rate_req_s=td.mean_rate_req_s,
                                   episode_s=episode_s, seeds_from=td.seeds_from,
                                   traces=[*td.traces, f"{part_source} (fine-tuning from {card.policy}, "
                                                       f"sha256 {card.sha256[:12]})"],
                                   held_out_seeds=td.held_out_seeds, held_out_traces=td.held_out_traces).model_dump(),
        validation_episodes=[e.model_dump() for e in val_eps],
        learning_curve=[_checkpoint(p).model_dump() for p in curve],
        selection=ShippedSelection(rule="guarded", **(selection.guard or {}),
                                   shipped=_checkpoint(selection.best)).model_dump(),
        evaluation_episodes=[e.model_dump() for e in val_eps],
        evaluation=[EvaluationRow.model_validate(r).model_dump() for r in table],
        sha256=sha256_file(out),
    )
    text = parse_card(data, f"{name}.json").to_json()
    return out.read_bytes(), text
