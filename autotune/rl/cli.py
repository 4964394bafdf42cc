"""``autotune train`` and ``autotune tune``; registered into the main CLI by ``register``.

Nothing heavy is imported here at module level: torch, SB3 and Ray load only
when one of these commands runs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from autotune.errors import InputError


def _positive_int(name: str, value: int) -> int:
    if value <= 0:
        raise InputError("command line", name, "must be positive")
    return value


def _hyper(pairs: list[str]) -> tuple[dict[str, Any], dict[str, float]]:
    """``--set key=value`` pairs: hyperparameters and reward weights, values as JSON where they parse."""
    from autotune.rl import features as F
    from autotune.rl.train import DEFAULT_HYPER, SELECTIONS
    from autotune.scenario import RewardSpec

    known = [*DEFAULT_HYPER, *RewardSpec.model_fields]
    hyper: dict[str, Any] = {}
    reward: dict[str, float] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in known:
            raise InputError("command line", "--set", f"expected KEY=VALUE with KEY one of "
                                                      f"{', '.join(known)} (got {pair!r})")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if key in RewardSpec.model_fields:
            if not isinstance(value, (int, float)) or value < 0 or (key == "slo_cap" and value <= 0):
                raise InputError("command line", "--set",
                                 f"{key} must be a number {'> 0' if key == 'slo_cap' else '>= 0'} (got {raw!r})")
            reward[key] = float(value)
        else:
            hyper[key] = value
    sizing = hyper.get("sizing", DEFAULT_HYPER["sizing"])
    if sizing not in F.SIZINGS:
        raise InputError("command line", "--set", f"sizing must be one of {', '.join(F.SIZINGS)} (got {sizing!r})")
    kind = hyper.get("action_kind", DEFAULT_HYPER["action_kind"])
    if kind not in F.ACTION_KINDS:
        raise InputError("command line", "--set",
                         f"action_kind must be one of {', '.join(F.ACTION_KINDS)} (got {kind!r})")
    if sizing == "crowd" and kind != "fill":
        raise InputError("command line", "--set", f"sizing=crowd needs action_kind=fill (got {kind!r})")
    try:
        guard = F.check_burst_guard(hyper.get("burst_guard", 0.0), hyper.get("guard_calm_s", F.GUARD_CALM_S))
    except ValueError as e:
        raise InputError("command line", "--set", str(e)) from None
    if guard[0] and sizing != "crowd":
        raise InputError("command line", "--set", f"burst_guard needs sizing=crowd (got {sizing!r})")
    try:
        F.check_mixed_capacity(hyper.get("mixed_capacity", DEFAULT_HYPER["mixed_capacity"]))
    except ValueError as e:
        raise InputError("command line", "--set", str(e)) from None
    selection = hyper.get("selection", DEFAULT_HYPER["selection"])
    if selection not in SELECTIONS:
        raise InputError("command line", "--set",
                         f"selection must be one of {', '.join(SELECTIONS)} (got {selection!r})")
    return hyper, reward


def _cmd_train(args: argparse.Namespace) -> int:
    from autotune.cli_common import console
    from autotune.rl.evaluation import VAL_BURSTS, VAL_EPISODES
    from autotune.rl.train import train_and_ship
    from autotune.scenario import load_scenario

    _positive_int("--timesteps", args.timesteps)
    _positive_int("--eval-every", args.eval_every)
    n_val = VAL_EPISODES if args.val_episodes is None else _positive_int("--val-episodes", args.val_episodes)
    bursts = VAL_BURSTS if args.val_bursts is None else args.val_bursts
    if bursts < 0:
        raise InputError("command line", "--val-bursts", f"must be 0 or more (got {bursts})")
    out = Path(args.out or f"policies/{args.scenario}.zip")
    if out.suffix != ".zip":
        raise InputError("command line", "--out", f"must end in .zip (got {out})")
    hyper, reward = _hyper(args.set or [])
    scenario = load_scenario(args.scenario)
    console.print(f"training MaskablePPO on [bold]{scenario.name}[/] for {args.timesteps:,} steps (seed {args.seed})")
    card = train_and_ship(scenario, args.timesteps, out, seed=args.seed, eval_every=args.eval_every,
                          n_val=n_val, val_bursts=bursts, progress=not args.no_progress, hyper=hyper,
                          reward=reward or None,
                          log=lambda s: console.print(s, highlight=False),
                          command="autotune " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    console.print(f"wrote {out} and {out.with_suffix('.json')} ({card['wall_time_s']:.0f} s, sha256 "
                  f"{card['sha256'][:12]}...)")
    for row in card["evaluation"]:
        console.print(f"  {row['policy']:>14}  ${row['cost_usd']:8.2f}  SLO {row['slo_attainment']:.2%}",
                      highlight=False)
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from autotune.cli_common import console
    from autotune.rl.tune import tune_ppo, tune_ray_baseline
    from autotune.scenario import load_scenario

    _positive_int("--trials", args.trials)
    conc = {} if args.concurrent is None else {"concurrent": _positive_int("--concurrent", args.concurrent)}
    scenario = load_scenario(args.scenario)
    summary: dict[str, Any] = {}
    if args.what in ("ray", "both"):
        summary["ray-tuned"] = tune_ray_baseline(scenario, args.trials, address=args.address,
                                                 log=lambda s: console.print(s, highlight=False), **conc)
    if args.what in ("ppo", "both"):
        _positive_int("--timesteps", args.timesteps)
        summary["ppo"] = tune_ppo(scenario, args.trials, args.timesteps, address=args.address,
                                  log=lambda s: console.print(s, highlight=False), **conc)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train an RL autoscaler (MaskablePPO) and write NAME.zip + model card NAME.json")
    p.add_argument("--scenario", default="default", help="scenario name (envs/NAME.yaml) or path")
    p.add_argument("--timesteps", type=int, default=200_000)
    p.add_argument("--out", help="policy zip to write (default policies/SCENARIO.zip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=20_000, help="validate against ray-default every N steps")
    p.add_argument("--val-episodes", type=int, default=None,
                   help="validation episodes (seeds 5000+; default: own workload, mmpp, flash, daily, ramp, poisson)")
    p.add_argument("--val-bursts", type=int, default=None,
                   help="more MMPP validation episodes after those (seeds 5100+; default 4): the guard keeps the "
                        "prior's SLO on each")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="hyperparameter or reward weight (repeatable), e.g. --set prior_logit=1.0 "
                        "--set action_kind=absolute --set slo_weight=2.5")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("tune", help="Ray Tune sweep: ray-default knobs into ray-tuned, and PPO hyperparameters")
    p.add_argument("--scenario", default="default")
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--what", choices=("ray", "ppo", "both"), default="both",
                   help="ray: tune the Ray autoscaler baseline; ppo: PPO hyperparameters and reward weights")
    p.add_argument("--timesteps", type=int, default=60_000, help="max PPO steps per trial (ASHA stops early)")
    p.add_argument("--address", help="existing Ray cluster (ray://host:10001); default: a local Ray")
    p.add_argument("--concurrent", type=int, help="trials at once (default: 2 for ray, 1 for ppo: one core each)")
    p.set_defaults(func=_cmd_tune)
