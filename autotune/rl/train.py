"""``autotune train``: MaskablePPO on the randomized env, periodic validation, model card.

The output is the SB3 zip of the chosen validated checkpoint plus its model card
(``NAME.json``, :class:`autotune.rl.card.ModelCard`): the decoding it needs, the
command and code that train it again, the training data and what is held out,
the learning curve, how the checkpoint was chosen, a comparison with the
baselines on the validation episodes, and the zip's sha256.
"""

from __future__ import annotations

import math
import platform
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from autotune.fileio import atomic_path, write_text_atomic
from autotune.paths import ROOT
from autotune.rl import workloads as W
from autotune.rl.actions import prior_logits
from autotune.rl.card import (
    CARD_VERSION,
    Checkpoint,
    Decoding,
    Episode,
    EvaluationRow,
    ModelCard,
    RewardWeights,
    ShippedSelection,
    TrainedFrom,
    TrainingData,
    Versions,
    sha256_file,
)
from autotune.rl.config import Selection as SelectionRule
from autotune.rl.config import TrainConfig, set_args
from autotune.rl.env import RayServeClusterEnv, reward_weights
from autotune.rl.evaluation import (
    VAL_BURSTS,
    VAL_EPISODES,
    VAL_FAMILIES,
    EvalEpisode,
    aggregate,
    comparison_table,
    run_policy,
    score,
    validation_episodes,
)
from autotune.rl.observation import FeatureContext, make_context
from autotune.rl.policy import RLPolicy
from autotune.scenario import Scenario
from autotune.sim.capacity import measure_capacity

# How the shipped checkpoint is chosen. "score": the lowest validation score.
# "guarded": the lowest score among checkpoints whose SLO after the warm-up on
# *every* validation episode is at least the untrained prior's (capped at the
# target, less GUARD_TOLERANCE). The score is an average, so a checkpoint can
# win it by trading one episode's misses for another's savings (say, by
# dropping the A100 a daily peak needs).
SELECTIONS: tuple[SelectionRule, ...] = get_args(SelectionRule)
GUARD_TOLERANCE = 0.001

Report = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    model: Any
    ctx: FeatureContext  # how the model's observations and actions are built
    config: TrainConfig
    curve: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    wall_s: float = 0.0
    guard: dict[str, Any] | None = None  # the per-episode SLO floors and whether a checkpoint kept them


def _make_vec_env(scenario: Scenario, config: TrainConfig, episode_s: float, seed: int,
                  reward: dict[str, float] | None) -> Any:
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    def make(i: int) -> Callable[[], Any]:
        def thunk() -> Any:
            env = Monitor(RayServeClusterEnv(scenario, randomize=True, episode_s=episode_s,
                                             reward_weights_override=reward, leave_out=config.leave_out,
                                             **config.env_options()))
            env.reset(seed=seed * 1000 + i)
            return env
        return thunk

    # In-process envs: two shared cores make subprocesses a loss for a 3 ms step.
    vec = DummyVecEnv([make(i) for i in range(config.n_envs)])
    vec.seed(seed)
    # Scale rewards (not observations) by a running return std: SLO penalties and
    # costs differ by orders of magnitude between episodes. Training-only, so
    # inference needs no normalization statistics.
    return VecNormalize(vec, norm_obs=False, norm_reward=True, gamma=config.gamma)


def _validate(scenario: Scenario, model: Any, ctx: FeatureContext, episodes: list[EvalEpisode],
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


def episode_length(scenario: Scenario, config: TrainConfig) -> float:
    return float(config.episode_s or scenario.training.episode_s)


def validation_set(scenario: Scenario, n_val: int, config: TrainConfig, bursts: int,
                   families: int = len(VAL_FAMILIES)) -> list[EvalEpisode]:
    """The validation episodes, as long as training's (``episode_s``): a policy whose state spans half an hour
    (a burst guard) is judged on episodes where that state plays out."""
    return validation_episodes(scenario, n_val, episode_length(scenario, config), bursts=bursts, families=families)


def train(scenario: Scenario, timesteps: int, seed: int = 0, config: TrainConfig | None = None,
          eval_every: int = 20_000, n_val: int = VAL_EPISODES, reward: dict[str, float] | None = None,
          progress: bool = True, report: Report | None = None, log: Callable[[str], None] = print,
          val_bursts: int = VAL_BURSTS, val_families: int = len(VAL_FAMILIES)) -> TrainResult:
    """Train MaskablePPO; keep the validated checkpoint the config's selection rule picks."""
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    cfg = config or TrainConfig()
    episode_s = episode_length(scenario, cfg)
    sc = scenario if not reward else scenario.model_copy(
        update={"reward": scenario.reward.model_copy(update=reward)})
    env = _make_vec_env(scenario, cfg, episode_s, seed, reward)
    model = MaskablePPO(
        "MlpPolicy", env, learning_rate=cfg.learning_rate, n_steps=cfg.n_steps, batch_size=cfg.batch_size,
        n_epochs=cfg.n_epochs, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda, ent_coef=cfg.ent_coef,
        clip_range=cfg.clip_range, policy_kwargs={"net_arch": list(cfg.net_arch)}, seed=seed, device="cpu",
        verbose=0)
    ctx = make_context(scenario, measure_capacity(scenario), sizing=cfg.sizing, crowd_factor=cfg.crowd_factor,
                       burst_guard=cfg.burst_guard, guard_calm_s=cfg.guard_calm_s,
                       measure_mixes=cfg.mixed_capacity == "measured")
    if cfg.prior_logit:
        with torch.no_grad():
            model.policy.action_net.bias.add_(torch.as_tensor(prior_logits(ctx, cfg.prior_logit)))
    episodes = validation_set(scenario, n_val, cfg, val_bursts, val_families)
    from autotune.registry import make_policy

    refs = [run_policy(scenario, make_policy("ray-default", scenario), ep) for ep in episodes]
    ref = aggregate(refs)
    log(f"validation: {len(episodes)} episodes ({', '.join(e.label for e in episodes)}); "
        f"ray-default ${ref['cost_usd']:.2f} at {ref['slo_attainment']:.2%} SLO")
    result = TrainResult(model, ctx, cfg)
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="autotune-train-"))
    best_path, best_any_path = tmp / "best.zip", tmp / "best-score.zip"
    # Without a prior the step-0 network is random: its SLO is no floor.
    selection = Selection(cfg.selection == "guarded" and bool(cfg.prior_logit), sc.slo.target)

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
            point: dict[str, Any] = {"timesteps": int(self.num_timesteps), "wall_s": time.monotonic() - t0, **v}
            result.curve.append(point)
            line = (f"{self.num_timesteps:>8} steps {point['wall_s']:6.0f}s  rl ${v['cost_usd']:.2f} "
                    f"SLO {v['slo_attainment']:.2%} (worst {v['min_episode_slo']:.2%}, "
                    f"after warm-up {v['min_episode_slo_after_warmup']:.2%})  "
                    f"= {v['cost_vs_ray_default']:.2f}x ray-default  score {v['score']:.2f}")
            # The step-0 network is only the prior (actions.prior_logits), not a learned policy: a
            # checkpoint is eligible for shipping only after at least one PPO update.
            learned = self.num_timesteps >= cfg.n_steps * cfg.n_envs
            point["learned"] = learned
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


def train_command(scenario: Scenario, timesteps: int, seed: int, config: TrainConfig, eval_every: int, n_val: int,
                  val_bursts: int, reward: dict[str, float] | None, name: str,
                  val_families: int = len(VAL_FAMILIES)) -> str:
    """The ``autotune train`` command that trains this run again into ``policies/NAME.zip``."""
    args = ["autotune", "train", "--scenario", scenario.name, "--timesteps", str(timesteps), "--seed", str(seed),
            "--eval-every", str(eval_every), "--val-episodes", str(n_val), "--val-bursts", str(val_bursts),
            "--val-families", str(val_families), "--out", f"policies/{name}.zip", *set_args(config, reward)]
    return shlex.join(args)


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def code_commit(head: str | None) -> str | None:
    """``head`` (HEAD when training started), when the package modules this process ran and the scenario files
    are as in it, committed or not (otherwise no commit pins what ran)."""
    import sys

    if head is None:
        return None
    files = sorted({str(Path(m.__file__).resolve().relative_to(ROOT)) for m in list(sys.modules.values())
                    if getattr(m, "__file__", None) and Path(m.__file__).resolve().is_relative_to(ROOT / "autotune")})
    changed = _git("diff", "--name-only", head, "--", "envs", *files)
    untracked = _git("ls-files", "--others", "--exclude-standard", "--", "envs", *files)
    return head if changed == "" and untracked == "" else None


def _checkpoint(point: dict[str, Any]) -> Checkpoint:
    keeps = point.get("keeps_prior_slo")
    return Checkpoint(**{**point, "learned": bool(point["learned"]),
                         "keeps_prior_slo": None if keeps is None else bool(keeps)})


def model_card(scenario: Scenario, result: TrainResult, timesteps: int, seed: int, zip_path: Path,
               table: list[dict[str, float | str]], episodes: list[EvalEpisode], reward: dict[str, float] | None,
               command: str, commit: str | None) -> ModelCard:
    import sb3_contrib
    import stable_baselines3
    import torch

    sc = scenario if not reward else scenario.model_copy(update={"reward": scenario.reward.model_copy(update=reward)})
    cfg = result.config
    assert result.best is not None, "training validates at least once"
    val = [Episode(label=e.label, seed=e.seed) for e in episodes]
    return ModelCard(
        card_version=CARD_VERSION,
        policy=zip_path.stem,
        scenario=scenario.name,
        pools=[p.name for p in scenario.pools],
        algorithm="sb3_contrib.MaskablePPO (MlpPolicy)",
        versions=Versions(python=platform.python_version(), torch=torch.__version__,
                          stable_baselines3=stable_baselines3.__version__, sb3_contrib=sb3_contrib.__version__),
        trained_from=TrainedFrom(command=command, code_commit=commit),
        timesteps=timesteps,
        seed=seed,
        wall_time_s=round(result.wall_s, 1),
        hyperparameters=cfg.model_copy(update={"episode_s": episode_length(scenario, cfg)}),
        reward_weights=RewardWeights(**reward_weights(sc)),
        decoding=Decoding.trained(cfg, result.ctx.obs_size),
        training_data=TrainingData(
            generators=W.trained_generators(cfg.leave_out), mean_rate_req_s=scenario.training.mean_rate_range,
            episode_s=episode_length(scenario, cfg), seeds_from=W.TRAIN_SEED_BASE,
            traces=W.trained_traces(cfg.leave_out),
            held_out_seeds=W.HELD_OUT_SEEDS, held_out_traces=list(W.HELD_OUT_TRACES)),
        validation_episodes=val,
        learning_curve=[_checkpoint(p) for p in result.curve],
        # "score" also when guarded was asked for without a prior (prior_logit 0): there is no floor then
        selection=ShippedSelection(rule="guarded" if result.guard is not None else "score", **(result.guard or {}),
                                   shipped=_checkpoint(result.best)),
        evaluation_episodes=val,
        evaluation=[EvaluationRow.model_validate(row) for row in table],
        sha256=sha256_file(zip_path),
    )


def train_and_ship(scenario: Scenario, timesteps: int, out: str | Path, seed: int = 0,
                   config: TrainConfig | None = None, eval_every: int = 20_000, n_val: int = VAL_EPISODES,
                   reward: dict[str, float] | None = None, progress: bool = True,
                   log: Callable[[str], None] = print, val_bursts: int = VAL_BURSTS,
                   val_families: int = len(VAL_FAMILIES)) -> ModelCard:
    """Train, write ``out`` (zip) atomically, evaluate against baselines, write the model card beside it."""
    out = Path(out)
    cfg = config or TrainConfig()
    head = _git("rev-parse", "HEAD")
    result = train(scenario, timesteps, seed, cfg, eval_every, n_val, reward, progress, log=log,
                   val_bursts=val_bursts, val_families=val_families)
    with atomic_path(out) as tmp:
        result.model.save(tmp)  # tmp ends in .zip, so SB3 writes exactly there
    episodes = validation_set(scenario, n_val, cfg, val_bursts, val_families)
    table = comparison_table(scenario, RLPolicy(result.model, result.ctx, name=f"rl:{out.stem}"), episodes)
    command = train_command(scenario, timesteps, seed, cfg, eval_every, n_val, val_bursts, reward, out.stem,
                            val_families)
    card = model_card(scenario, result, timesteps, seed, out, table, episodes, reward, command, code_commit(head))
    write_text_atomic(out.with_suffix(".json"), card.to_json())
    return card
