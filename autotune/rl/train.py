"""``autotune train``: MaskablePPO on the randomized env, periodic validation, model card.

The output is the SB3 zip of the best validated checkpoint plus a model card
(``NAME.json``) with everything needed to reproduce and trust it: scenario and
pools, training distribution and seeds, held-out traces, timesteps, wall time,
hyperparameters, reward weights, the learning curve, a comparison table with
the baselines on validation episodes, and the zip's sha256.
"""

from __future__ import annotations

import json
import math
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotune.fileio import atomic_path, write_text_atomic
from autotune.rl import features as F
from autotune.rl import workloads as W
from autotune.rl.env import RayServeClusterEnv, reward_weights
from autotune.rl.evaluation import (
    VAL_BURSTS,
    VAL_EPISODES,
    EvalEpisode,
    aggregate,
    comparison_table,
    run_policy,
    score,
    validation_episodes,
)
from autotune.rl.policy import RLPolicy, sha256_file
from autotune.scenario import Scenario
from autotune.sim.capacity import measure_capacity

DEFAULT_HYPER: dict[str, Any] = {
    "learning_rate": 3e-4,
    "n_steps": 256,  # per env; x n_envs per update
    "batch_size": 256,
    "n_epochs": 5,
    "gamma": 0.95,  # ~20 windows (3 min) horizon: covers the 145 s start-up delay, low variance
    "gae_lambda": 0.95,
    "ent_coef": 0.01,
    "clip_range": 0.2,
    "net_arch": [64, 64],
    "n_envs": 4,
    "episode_s": None,  # None: the scenario's training.episode_s
    "prior_logit": 2.5,  # initial bias toward a sensible fleet (features.prior_logits); 0 disables
    "action_kind": F.ACTION_KIND,  # one of F.ACTION_KINDS (features module docstring)
    "sizing": F.SIZING,  # one of F.SIZINGS: the load headroom multiplies (features module docstring)
    "selection": "guarded",  # one of SELECTIONS: which validated checkpoint ships
    "burst_guard": 0.0,  # sizing=crowd: keep the insurance until guard_calm_s pass without a burst this big (0: off)
    "guard_calm_s": F.GUARD_CALM_S,
    # Fleets mixing GPU types: "measured" (capacity.MixedFleets) or "added" (each type's capacity summed, as
    # before session 10). Measuring is right but slow where exploration asks about many mixes: on ``mixed``
    # (four pools, three GPU types) a 300k-step run did not reach its first evaluation in 18 minutes.
    "mixed_capacity": "measured",
}
# How the shipped checkpoint is chosen. "score": the lowest validation score.
# "guarded": the lowest score among checkpoints whose SLO after the warm-up on
# *every* validation episode is at least the untrained prior's (capped at the
# target, less GUARD_TOLERANCE); the score alone, being an average, let PPO
# trade one episode's misses for another's savings (mixed-large: it dropped the
# A100 that the daily peak needs and won on the other three episodes).
SELECTIONS = ("guarded", "score")
GUARD_TOLERANCE = 0.001

Report = Callable[[dict[str, float]], None]


@dataclass
class TrainResult:
    model: Any
    ctx: F.FeatureContext  # how the model's observations and actions are built (action kind included)
    curve: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] | None = None
    wall_s: float = 0.0
    guard: dict[str, Any] | None = None  # the per-episode SLO floors and whether a checkpoint kept them


def _make_vec_env(scenario: Scenario, n_envs: int, episode_s: float, seed: int,
                  reward: dict[str, float] | None, gamma: float, action_kind: str, sizing: str,
                  guard: tuple[float, float] = (0.0, F.GUARD_CALM_S), mixed_capacity: str = "measured") -> Any:
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    def make(i: int) -> Callable[[], Any]:
        def thunk() -> Any:
            env = Monitor(RayServeClusterEnv(scenario, randomize=True, episode_s=episode_s,
                                             reward_weights_override=reward, action_kind=action_kind,
                                             sizing=sizing, burst_guard=guard[0], guard_calm_s=guard[1],
                                             mixed_capacity=mixed_capacity))
            env.reset(seed=seed * 1000 + i)
            return env
        return thunk

    # In-process envs: two shared cores make subprocesses a loss for a 3 ms step.
    vec = DummyVecEnv([make(i) for i in range(n_envs)])
    vec.seed(seed)
    # Scale rewards (not observations) by a running return std: SLO penalties and
    # costs differ by orders of magnitude between episodes. Training-only, so
    # inference needs no normalization statistics.
    return VecNormalize(vec, norm_obs=False, norm_reward=True, gamma=gamma)


def _validate(scenario: Scenario, model: Any, ctx: F.FeatureContext, episodes: list[EvalEpisode],
              refs: list[dict[str, Any]]) -> dict[str, Any]:
    """Validation totals, and a score averaged per episode so one costly episode does not dominate."""
    pol = RLPolicy(model, ctx, name="rl")
    rows = [run_policy(scenario, pol, ep) for ep in episodes]
    agg = aggregate(rows)
    ref = aggregate(refs)
    # SLO after the warm-up: the opening minutes from a cold fleet miss for every causal policy.
    per_ep = [score(float(r["cost_usd"]), float(r["slo_after_warmup"]), float(b["cost_usd"]), scenario.slo.target)
              for r, b in zip(rows, refs, strict=False)]
    return {"cost_usd": agg["cost_usd"], "slo_attainment": agg["slo_attainment"],
            "episode_slo_after_warmup": [float(r["slo_after_warmup"]) for r in rows],
            "min_episode_slo": agg["min_episode_slo"],
            "min_episode_slo_after_warmup": agg["min_episode_slo_after_warmup"],
            "cost_vs_ray_default": agg["cost_usd"] / ref["cost_usd"], "score": float(sum(per_ep) / len(per_ep))}


def guard_floors(prior_slo: list[float], target: float, tol: float = GUARD_TOLERANCE) -> list[float]:
    """Per-episode SLO a checkpoint must keep: the prior's, at most the target, less ``tol``."""
    return [min(s, target) - tol if not math.isnan(s) else 0.0 for s in prior_slo]


def keeps_floors(slo: list[float], floors: list[float]) -> bool:
    return all(math.isnan(s) or s >= f for s, f in zip(slo, floors, strict=True))


@dataclass
class Selection:
    """Which validated checkpoint ships (see SELECTIONS): fed every validation point in order."""

    guarded: bool
    target: float
    guard: dict[str, Any] | None = None
    best_any: dict[str, Any] | None = None  # lowest score among learned checkpoints
    best_kept: dict[str, Any] | None = None  # lowest score among those that keep the prior's floors

    def offer(self, point: dict[str, Any], learned: bool) -> tuple[bool, bool]:
        """Record ``point``; return whether it is the new best by score, and the new best that keeps the floors."""
        slo = list(point["episode_slo_after_warmup"])
        if self.guarded and not learned and self.guard is None:
            self.guard = {"tolerance": GUARD_TOLERANCE, "prior_slo_after_warmup": slo,
                          "floors": guard_floors(slo, self.target), "kept": False}
        kept = self.guard is not None and keeps_floors(slo, self.guard["floors"])
        if self.guard is not None:
            point["keeps_prior_slo"] = float(kept)
        new_any = learned and (self.best_any is None or point["score"] < self.best_any["score"])
        if new_any:
            self.best_any = point
        new_kept = learned and kept and (self.best_kept is None or point["score"] < self.best_kept["score"])
        if new_kept:
            assert self.guard is not None
            self.guard["kept"] = True
            self.best_kept = point
        return new_any, new_kept

    @property
    def best(self) -> dict[str, Any] | None:
        return self.best_kept or self.best_any


def validation_set(scenario: Scenario, n_val: int, hyper: dict[str, Any], bursts: int) -> list[EvalEpisode]:
    """The validation episodes, as long as training's (``episode_s``): a policy whose state spans half an hour
    (a burst guard) is judged on episodes where that state plays out."""
    return validation_episodes(scenario, n_val, float(hyper.get("episode_s") or scenario.training.episode_s),
                               bursts=bursts)


def train(scenario: Scenario, timesteps: int, seed: int = 0, hyper: dict[str, Any] | None = None,
          eval_every: int = 20_000, n_val: int = VAL_EPISODES, reward: dict[str, float] | None = None,
          progress: bool = True, report: Report | None = None, log: Callable[[str], None] = print,
          val_bursts: int = VAL_BURSTS) -> TrainResult:
    """Train MaskablePPO; keep the checkpoint with the best validation score."""
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    h = {**DEFAULT_HYPER, **(hyper or {})}
    h["episode_s"] = h["episode_s"] or scenario.training.episode_s
    guard = F.check_burst_guard(h["burst_guard"], h["guard_calm_s"])
    sc = scenario if not reward else scenario.model_copy(
        update={"reward": scenario.reward.model_copy(update=reward)})
    env = _make_vec_env(scenario, int(h["n_envs"]), float(h["episode_s"]), seed, reward, float(h["gamma"]),
                        str(h["action_kind"]), str(h["sizing"]), guard, str(h["mixed_capacity"]))
    n_steps = int(h["n_steps"])
    model = MaskablePPO(
        "MlpPolicy", env, learning_rate=float(h["learning_rate"]), n_steps=n_steps,
        batch_size=int(h["batch_size"]), n_epochs=int(h["n_epochs"]), gamma=float(h["gamma"]),
        gae_lambda=float(h["gae_lambda"]), ent_coef=float(h["ent_coef"]), clip_range=float(h["clip_range"]),
        policy_kwargs={"net_arch": list(h["net_arch"])}, seed=seed, device="cpu", verbose=0)
    ctx = F.make_context(scenario, measure_capacity(scenario), action_kind=str(h["action_kind"]),
                         sizing=str(h["sizing"]),
                         burst_guard=guard[0], guard_calm_s=guard[1],
                         measure_mixes=F.check_mixed_capacity(h["mixed_capacity"]))
    if float(h["prior_logit"]):
        with torch.no_grad():
            model.policy.action_net.bias.add_(torch.as_tensor(F.prior_logits(ctx, float(h["prior_logit"]))))
    episodes = validation_set(scenario, n_val, h, val_bursts)
    from autotune.registry import make_policy

    refs = [run_policy(scenario, make_policy("ray-default", scenario), ep) for ep in episodes]
    ref = aggregate(refs)
    log(f"validation: {len(episodes)} episodes ({', '.join(e.label for e in episodes)}); "
        f"ray-default ${ref['cost_usd']:.2f} at {ref['slo_attainment']:.2%} SLO")
    result = TrainResult(model, ctx)
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="autotune-train-"))
    best_path, best_any_path = tmp / "best.zip", tmp / "best-score.zip"
    if h["selection"] not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)} (got {h['selection']!r})")
    # Without a prior the step-0 network is random: its SLO is no floor.
    selection = Selection(h["selection"] == "guarded" and bool(float(h["prior_logit"])), sc.slo.target)

    class Periodic(BaseCallback):
        """Validate every ``eval_every`` steps, log the learning curve, keep the best model."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval = 0
            self.bar: Any = None
            self.task: Any = None

        def _on_training_start(self) -> None:
            if progress:
                from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

                from autotune.cli_common import console

                self.bar = Progress(TextColumn("training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                    TimeRemainingColumn(), console=console, transient=True)
                self.bar.start()
                self.task = self.bar.add_task("train", total=timesteps)

        def _on_step(self) -> bool:
            if self.bar is not None:
                self.bar.update(self.task, completed=self.num_timesteps)
            if self.num_timesteps >= self.next_eval:
                self.next_eval += eval_every
                self.evaluate()
            return True

        def evaluate(self) -> None:
            v = _validate(sc, self.model, ctx, episodes, refs)
            point = {"timesteps": float(self.num_timesteps), "wall_s": time.monotonic() - t0, **v}
            result.curve.append(point)
            line = (f"{self.num_timesteps:>8} steps {point['wall_s']:6.0f}s  rl ${v['cost_usd']:.2f} "
                    f"SLO {v['slo_attainment']:.2%} (worst {v['min_episode_slo']:.2%}, "
                    f"after warm-up {v['min_episode_slo_after_warmup']:.2%})  "
                    f"= {v['cost_vs_ray_default']:.2f}x ray-default  score {v['score']:.2f}")
            # The step-0 network is only the prior (features.prior_logits), not a learned policy: a
            # checkpoint is eligible for shipping only after at least one PPO update.
            learned = self.num_timesteps >= n_steps * int(h["n_envs"])
            point["learned"] = float(learned)
            new_any, new_kept = selection.offer(point, learned)
            if new_any:
                self.model.save(best_any_path)
            if new_kept:
                self.model.save(best_path)
            result.guard, result.best = selection.guard, selection.best
            if learned and result.best is point:
                line += "  (best)"
            elif new_any:
                line += "  (best score, but below the prior's SLO on an episode)"
            (self.bar.console.log if self.bar is not None else log)(line)
            if report is not None:
                report(point)

        def _on_training_end(self) -> None:
            self.evaluate()
            if self.bar is not None:
                self.bar.stop()

    model.learn(total_timesteps=timesteps, callback=Periodic())
    result.wall_s = time.monotonic() - t0
    if result.guard is not None and best_path.exists():
        result.model = MaskablePPO.load(best_path, device="cpu")
    elif best_any_path.exists():
        if result.guard is not None:
            log("warning: no checkpoint kept the prior's SLO on every validation episode; "
                "shipping the best by score (model card: selection.kept = false)")
        result.model = MaskablePPO.load(best_any_path, device="cpu")
    return result


def model_card(scenario: Scenario, result: TrainResult, timesteps: int, seed: int, hyper: dict[str, Any],
               zip_path: Path, table: list[dict[str, float | str]], episodes: list[EvalEpisode],
               reward: dict[str, float] | None, command: str | None = None) -> dict[str, Any]:
    import sb3_contrib
    import stable_baselines3
    import torch

    sc = scenario if not reward else scenario.model_copy(update={"reward": scenario.reward.model_copy(update=reward)})
    return {
        "policy": zip_path.stem,
        "scenario": scenario.name,
        "pools": [p.name for p in scenario.pools],
        "algorithm": "sb3_contrib.MaskablePPO (MlpPolicy)",
        "timesteps": timesteps,
        "seed": seed,
        "wall_time_s": round(result.wall_s, 1),
        "hyperparameters": {**DEFAULT_HYPER, "episode_s": scenario.training.episode_s, **hyper},
        "reward_weights": reward_weights(sc),
        "action": _action_card(result.ctx.action_kind, result.ctx.initial_level),
        "features": {"sizing": result.ctx.sizing, "size": result.ctx.obs_size,
                     # how fleets that mix GPU types were sized in training (capacity.MixedFleets)
                     "mixed_capacity": str(hyper.get("mixed_capacity", DEFAULT_HYPER["mixed_capacity"])),
                     **({"crowd_factor": result.ctx.crowd_factor, "note": CROWD_NOTE}
                        if result.ctx.sizing == "crowd" else {}),
                     **({"burst_guard": result.ctx.burst_guard,
                         "guard_calm_s": result.ctx.guard_windows * result.ctx.interval_s, "guard_note": GUARD_NOTE}
                        if result.ctx.burst_guard else {})},
        "training_distribution": {
            "generators": list(W.GENERATORS), "mean_rate_req_s": list(scenario.training.mean_rate_range),
            "seeds": f">= {W.TRAIN_SEED_BASE}", "traces": list(W.TRAINED_TRACES),
            "episode_s": hyper.get("episode_s") or scenario.training.episode_s,
        },
        "held_out": {"seeds": "0..999 (benchmark, whatif)", "validation_seeds": [e.seed for e in episodes],
                     "traces": list(W.HELD_OUT_TRACES)},
        "validation_episodes": [e.label for e in episodes],
        "best_checkpoint": result.best,
        # "score" also when guarded was asked for without a prior (prior_logit 0): there is no floor then
        "selection": {"rule": "guarded" if result.guard is not None else "score", **(result.guard or {})},
        "learning_curve": result.curve,
        "evaluation": table,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "stable_baselines3": stable_baselines3.__version__, "sb3_contrib": sb3_contrib.__version__},
        "sha256": sha256_file(zip_path),
        **({"command": command} if command else {}),
    }


CROWD_NOTE = ("load = max(predictive size, crowd_factor x the median window rate of the last 10 minutes); "
              "a level's need is max(level * load, predictive size): levels trade the insurance, not the forecast")


GUARD_NOTE = ("until guard_calm_s pass without a window above burst_guard x the calm load (and from the start), "
              "every pool is held at level >= 1.0 and at its batch size of most SLO capacity")


def _action_card(kind: str, initial_level: float = F.INITIAL_LEVEL) -> dict[str, Any]:
    """How the network's actions decode (``load_policy`` reads ``kind`` and ``max_down_fraction``)."""
    # "load" is the forecast or, with features.sizing = burst, predictive or crowd, that rule's size.
    level_notes = {
        "moves": "per pool: move the headroom level (index into levels) by moves[a], then target = the fewest "
                 "replicas whose SLO capacity at that fleet size covers level * load; the most cost-efficient pool "
                 "starts at initial_level, the others at 0",
        "fill": "per pool, cheapest per req/s of SLO capacity first: move the headroom level by moves[a], then "
                "target = the fewest replicas covering max(0, level * load - capacity of the cheaper pools and of "
                "the later pools' minimums); every pool starts at initial_level",
    }
    if kind in level_notes:
        return {"kind": kind, "levels": list(F.LEVELS), "moves": list(F.MOVES), "initial_level": initial_level,
                "max_down_fraction": F.MAX_DOWN_FRACTION, "note": level_notes[kind]}
    return {"kind": kind, "multipliers": [None if x != x else x for x in F.MULTIPLIERS],
            "max_down_fraction": F.MAX_DOWN_FRACTION,
            "note": "per pool: index 0 holds the target, else target = ceil(m * forecast / capacity); "
                    "scale-down per window limited to max_down_fraction of the target (1.0 = none)"}


def train_and_ship(scenario: Scenario, timesteps: int, out: str | Path, seed: int = 0,
                   hyper: dict[str, Any] | None = None, eval_every: int = 20_000, n_val: int = VAL_EPISODES,
                   reward: dict[str, float] | None = None, progress: bool = True,
                   log: Callable[[str], None] = print, command: str | None = None,
                   val_bursts: int = VAL_BURSTS) -> dict[str, Any]:
    """Train, write ``out`` (zip) atomically, evaluate against baselines, write the model card beside it."""
    out = Path(out)
    hyper = hyper or {}
    result = train(scenario, timesteps, seed, hyper, eval_every, n_val, reward, progress, log=log,
                   val_bursts=val_bursts)
    with atomic_path(out) as tmp:
        result.model.save(tmp)  # tmp ends in .zip, so SB3 writes exactly there
    episodes = validation_set(scenario, n_val, hyper, val_bursts)
    table = comparison_table(scenario, RLPolicy(result.model, result.ctx, name=f"rl:{out.stem}"), episodes)
    card = model_card(scenario, result, timesteps, seed, hyper, out, table, episodes, reward, command)
    write_text_atomic(out.with_suffix(".json"), json.dumps(card, indent=2) + "\n")
    return card
