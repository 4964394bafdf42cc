"""``autotune tune``: Ray Tune sweeps with ASHA, on a local Ray or an existing cluster.

Two sweeps share one machinery and one objective (:func:`autotune.rl.evaluation.score`:
cost relative to ``ray-default`` per tuning episode plus a steep charge per
point of SLO shortfall), so the RL policy is compared with the strongest rule:

- ``ray``: Ray Serve's autoscaling knobs (target_ongoing_requests, delays,
  look-back, scaling factors); each trial simulates the tuning episodes one
  after another and reports a running score, so ASHA drops bad configs after
  an episode or two. The best becomes ``policies/<scenario>-ray-tuned.json``,
  which ``--policy ray-tuned`` loads.
- ``ppo``: PPO hyperparameters and reward weights; each trial trains and
  reports its validation score at checkpoints (ASHA over timesteps). The best
  config is written to ``policies/<scenario>-ppo-tune.json``.

Tuning episodes use validation seeds (5000+), never the benchmark's (0..999).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotune.fileio import write_text_atomic
from autotune.paths import POLICIES
from autotune.scenario import RayAutoscalerSpec, Scenario

if TYPE_CHECKING:
    from autotune.rl.evaluation import EvalEpisode

Log = Callable[[str], None]
N_TUNE_EPISODES = 4  # the first validation mixes (own workload, mmpp, flash, daily)
N_TUNE_FAMILIES = 3  # then the trained families' episodes (synthetic crowds, spiky, a WorldCup crowd)
N_TUNED = N_TUNE_EPISODES + N_TUNE_FAMILIES


def _init_ray(address: str | None, num_cpus: int) -> None:
    import os

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # "local" starts a private Ray even when another cluster runs on this host;
    # a bare ray.init() would attach to that cluster.
    if address:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True,
                 log_to_driver=False)


def _ray_trial(config: dict[str, Any], scenario_json: str, episodes: list[EvalEpisode] | None = None,
               ref_costs: list[float] | None = None) -> None:
    """One Ray-autoscaler config, scored episode by episode (ASHA's time axis); ``episodes`` (with ray-default's
    cost on each, ``ref_costs``) replace the validation episodes."""
    from ray import tune

    from autotune.policies.ray_default import RayDefaultPolicy
    from autotune.registry import make_policy
    from autotune.rl.evaluation import run_policy, score, validation_episodes

    sc = Scenario.model_validate_json(scenario_json)
    cfg = RayAutoscalerSpec(**config)
    pol = RayDefaultPolicy(tuple(sc.pools), cfg, name="ray-tuned")
    ref = make_policy("ray-default", sc)
    scores: list[float] = []
    slo_min = 1.0
    eps = (validation_episodes(sc, N_TUNE_EPISODES, bursts=0, families=N_TUNE_FAMILIES)
           if episodes is None else episodes)
    for k, ep in enumerate(eps):
        r = run_policy(sc, pol, ep)
        b_cost = float(run_policy(sc, ref, ep)["cost_usd"]) if ref_costs is None else ref_costs[k]
        scores.append(score(float(r["cost_usd"]), float(r["slo_after_warmup"]), b_cost, sc.slo.target))
        slo_min = min(slo_min, float(r["slo_after_warmup"]))
        tune.report({"score": sum(scores) / len(scores), "episodes": k + 1, "min_slo": slo_min})


def _ray_default_rows(sc: Scenario, episodes: list[EvalEpisode] | None = None) -> list[dict[str, Any]]:
    from autotune.registry import make_policy
    from autotune.rl.evaluation import run_policy, validation_episodes

    ref = make_policy("ray-default", sc)
    eps = (validation_episodes(sc, N_TUNE_EPISODES, bursts=0, families=N_TUNE_FAMILIES)
           if episodes is None else episodes)
    return [run_policy(sc, ref, ep) for ep in eps]


def _ray_default_score(sc: Scenario, rows: list[dict[str, Any]] | None = None) -> float:
    from autotune.rl.evaluation import score

    rows = _ray_default_rows(sc) if rows is None else rows
    return sum(score(float(r["cost_usd"]), float(r["slo_after_warmup"]), float(r["cost_usd"]), sc.slo.target)
               for r in rows) / len(rows)


def ray_search_space() -> dict[str, Any]:
    from ray import tune

    return {
        "target_ongoing_requests": tune.loguniform(1.0, 64.0),
        "upscale_delay_s": tune.uniform(0.0, 60.0),
        "downscale_delay_s": tune.loguniform(20.0, 900.0),
        "look_back_period_s": tune.uniform(10.0, 60.0),
        "upscaling_factor": tune.uniform(0.5, 3.0),
        "downscaling_factor": tune.uniform(0.2, 1.0),
    }


def _run(trainable: Any, space: dict[str, Any], trials: int, time_attr: str, max_t: int, grace: int,
         name: str, concurrent: int, start: list[dict[str, Any]] | None = None) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    sched = ASHAScheduler(time_attr=time_attr, max_t=max_t, grace_period=grace, reduction_factor=2)
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(metric="score", mode="min", scheduler=sched, num_samples=trials,
                                    max_concurrent_trials=concurrent,
                                    search_alg=BasicVariantGenerator(points_to_evaluate=start)),
        run_config=tune.RunConfig(name=name, storage_path=str(Path("/tmp") / "autotune-ray-results"),
                                  verbose=0),
    )
    return tuner.fit()


def tune_ray_baseline(scenario: Scenario, trials: int, address: str | None = None, log: Log = print,
                      out: Path | None = None, concurrent: int = 2,
                      episodes: list[EvalEpisode] | None = None) -> dict[str, Any]:
    """Sweep the Ray autoscaler knobs; write the best to ``policies/<scenario>-ray-tuned.json`` (or ``out``).

    ``episodes``: tune on these (say, slices of a user's recorded traffic) instead of the validation episodes;
    ray-default's cost on each is simulated once, here, not in every trial."""
    from ray import tune

    _init_ray(address, concurrent)
    t0 = time.monotonic()
    n_eps = N_TUNED if episodes is None else len(episodes)
    given: dict[str, Any] = {}
    ref_rows = None
    if episodes is not None:
        ref_rows = _ray_default_rows(scenario, episodes)
        given = {"episodes": episodes, "ref_costs": [float(r["cost_usd"]) for r in ref_rows]}
    results = _run(tune.with_parameters(_ray_trial, scenario_json=scenario.model_dump_json(), **given),
                   ray_search_space(), trials, "episodes", n_eps, 1, f"ray-tune-{scenario.name}", concurrent,
                   # Ray's own defaults are the first trial, so ray-tuned is never worse than ray-default.
                   start=[{**RayAutoscalerSpec().model_dump(), "upscaling_factor": 1.0, "downscaling_factor": 1.0}])
    best = results.get_best_result(metric="score", mode="min", scope="last")
    if best.metrics is None or best.metrics.get("episodes") != n_eps:
        # ASHA may leave the lowest last score on a trial it stopped early; want a complete one.
        done = [r for r in results if r.metrics and r.metrics.get("episodes") == n_eps]
        best = min(done, key=lambda r: r.metrics["score"])
    cfg = RayAutoscalerSpec(**best.config)
    data = {
        "ray_autoscaler": cfg.model_dump(),
        "scenario": scenario.name,
        "objective": "mean over tuning episodes of cost / ray-default cost + 100 x SLO shortfall after a 300 s "
                     "warm-up (lower is better)",
        "score": best.metrics["score"],
        "min_episode_slo": best.metrics["min_slo"],
        "trials": trials,
        "scheduler": "ASHA over episodes (grace 1, reduction 2)",
        "tuning_episodes": (f"{N_TUNE_EPISODES} validation episodes and {N_TUNE_FAMILIES} of the trained families, "
                             "seeds 5000+") if episodes is None else
                           f"{n_eps} given episodes: {', '.join(e.label for e in episodes)}",
        "wall_time_s": round(time.monotonic() - t0, 1),
    }
    data["ray_default_score"] = _ray_default_score(scenario, ref_rows)
    path = out or POLICIES / f"{scenario.name}-ray-tuned.json"
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
    log(f"ray-tuned for {scenario.name}: score {data['score']:.3f} (ray-default {data['ray_default_score']:.3f}, "
        f"lower is better) -> {path}")
    return data


def _ppo_trial(config: dict[str, Any], scenario_json: str, timesteps: int) -> None:
    from ray import tune

    from autotune.rl.config import TrainConfig
    from autotune.rl.train import train

    sc = Scenario.model_validate_json(scenario_json)
    config = dict(config)  # Tune keeps the dict it passes in as the trial's recorded config
    reward = {"slo_weight": config.pop("slo_weight"), "churn_weight": config.pop("churn_weight")}

    def report(p: dict[str, float]) -> None:
        # The step-0 point is the untrained prior: reporting it would let a trial that never
        # learnt anything win the sweep with the prior's score.
        if p.get("learned"):
            tune.report({"score": p["score"], "timesteps": p["timesteps"]})

    train(sc, timesteps, seed=0, config=TrainConfig(**config), eval_every=max(timesteps // 6, 1000), n_val=2,
          reward=reward, progress=False, report=report, log=lambda s: None)


def ppo_search_space() -> dict[str, Any]:
    from ray import tune

    from autotune.rl.observation import SIZINGS

    return {
        "learning_rate": tune.loguniform(1e-4, 1e-3),
        "n_epochs": tune.choice([4, 8]),
        "gamma": tune.choice([0.95, 0.98, 0.99]),
        "ent_coef": tune.loguniform(1e-3, 3e-2),
        "net_arch": tune.choice([[64, 64], [128, 128]]),
        "slo_weight": tune.uniform(0.5, 3.0),
        "churn_weight": tune.loguniform(1e-3, 0.1),
        # How strongly the network starts at its sizing's rule, and which rule that is.
        "prior_logit": tune.choice([0.5, 1.0, 2.5]),
        "sizing": tune.choice(list(SIZINGS)),
    }


def tune_ppo(scenario: Scenario, trials: int, timesteps: int, address: str | None = None, log: Log = print,
             out: Path | None = None, concurrent: int = 1) -> dict[str, Any]:
    """Sweep PPO hyperparameters and reward weights; write the best to ``policies/<scenario>-ppo-tune.json``."""
    from ray import tune

    _init_ray(address, concurrent)
    t0 = time.monotonic()
    trainable = tune.with_parameters(_ppo_trial, scenario_json=scenario.model_dump_json(), timesteps=timesteps)
    results = _run(tune.with_resources(trainable, {"cpu": 1}), ppo_search_space(), trials, "timesteps", timesteps,
                   max(timesteps // 3, 1), f"ppo-tune-{scenario.name}", concurrent)
    best = results.get_best_result(metric="score", mode="min", scope="all")
    data = {"scenario": scenario.name, "best_config": best.config, "score": best.metrics["score"],
            "trials": trials, "timesteps_per_trial": timesteps, "scheduler": "ASHA over timesteps",
            "all": [{"config": r.config, "score": r.metrics.get("score") if r.metrics else None} for r in results],
            "wall_time_s": round(time.monotonic() - t0, 1)}
    path = out or POLICIES / f"{scenario.name}-ppo-tune.json"
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
    log(f"ppo tune for {scenario.name}: best score {data['score']:.3f} -> {path}")
    return data
