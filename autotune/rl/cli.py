"""``autotune train`` and ``autotune tune``; registered into the main CLI by ``register``.

Nothing heavy is imported here at module level: torch, SB3 and Ray load only
when one of these commands runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from autotune.errors import InputError


def _positive_int(name: str, value: int) -> int:
    if value <= 0:
        raise InputError("command line", name, "must be positive")
    return value


def _cmd_train(args: argparse.Namespace) -> int:
    from autotune.cli_common import console
    from autotune.rl.config import parse_set
    from autotune.rl.evaluation import VAL_BURSTS, VAL_EPISODES, VAL_FAMILIES
    from autotune.scenario import load_scenario

    _positive_int("--timesteps", args.timesteps)
    _positive_int("--eval-every", args.eval_every)
    n_val = VAL_EPISODES if args.val_episodes is None else _positive_int("--val-episodes", args.val_episodes)
    bursts = VAL_BURSTS if args.val_bursts is None else args.val_bursts
    if bursts < 0:
        raise InputError("command line", "--val-bursts", f"must be 0 or more (got {bursts})")
    families = len(VAL_FAMILIES) if args.val_families is None else args.val_families
    if not 0 <= families <= len(VAL_FAMILIES):
        raise InputError("command line", "--val-families", f"must be 0..{len(VAL_FAMILIES)} (got {families})")
    out = Path(args.out or f"policies/{args.scenario}.zip")
    if out.suffix != ".zip":
        raise InputError("command line", "--out", f"must end in .zip (got {out})")
    config, reward = parse_set(args.set or [])
    scenario = load_scenario(args.scenario)
    from autotune.rl.train import train_and_ship  # late: bad input fails before the env and simulator load

    console.print(f"training MaskablePPO on [bold]{scenario.name}[/] for {args.timesteps:,} steps (seed {args.seed})")
    card = train_and_ship(scenario, args.timesteps, out, seed=args.seed, config=config, eval_every=args.eval_every,
                          n_val=n_val, val_bursts=bursts, val_families=families, progress=not args.no_progress,
                          reward=reward or None,
                          log=lambda s: console.print(s, highlight=False))
    console.print(f"wrote {out} and {out.with_suffix('.json')} ({card.wall_time_s:.0f} s, sha256 "
                  f"{card.sha256[:12]}...)")
    for row in card.evaluation:
        console.print(f"  {row.policy:>14}  ${row.cost_usd:8.2f}  SLO {row.slo_attainment:.2%}", highlight=False)
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
    from autotune.rl.config import keys_help

    p = sub.add_parser("train", help="train an RL autoscaler (MaskablePPO) and write NAME.zip + model card NAME.json",
                       epilog="--set keys:\n" + keys_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.add_argument("--val-families", type=int, default=None,
                   help="then an episode of each trained traffic family (seeds 5200+; default 3: synthetic "
                        "crowds, a per-second spiky stream, a WorldCup crowd)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="training config key or reward weight (repeatable; the keys are listed below), e.g. "
                        "--set sizing=crowd --set slo_weight=2.5")
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
