"""The training configuration: PPO's hyperparameters and the decoding a policy is trained with.

``autotune train --set KEY=VALUE`` parses into :class:`TrainConfig` (or into a reward-weight override, for the
keys of :class:`autotune.scenario.RewardSpec`). Only pydantic is imported here, so the CLI can list and check the
keys without loading torch.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autotune.errors import InputError
from autotune.scenario import RewardSpec

Selection = Literal["guarded", "score"]
MixedCapacity = Literal["measured", "added"]
# The groups of autotune.workload.families.GROUPS (only pydantic is imported here); the llm group has no training
# family, so leaving it out changes nothing.
LeaveOut = Literal["synthetic-shapes", "daily", "crowds", "llm", "spiky"]


class TrainConfig(BaseModel):
    """Everything ``autotune train`` takes besides the scenario, the step budget and the seeds."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(3e-4, gt=0, description="Adam step size")
    n_steps: int = Field(256, gt=1, description="steps per env between PPO updates (x n_envs per update)")
    batch_size: int = Field(256, gt=1, description="minibatch size of a PPO update")
    n_epochs: int = Field(5, gt=0, description="passes over each rollout per update")
    gamma: float = Field(0.95, gt=0, le=1, description="discount per window; 0.95 looks ~20 windows (3 min) "
                                                       "ahead, past a 145 s start-up, at low variance")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE bias/variance trade-off")
    ent_coef: float = Field(0.01, ge=0, description="entropy bonus: how long exploration stays broad")
    clip_range: float = Field(0.2, gt=0, description="PPO policy-ratio clip")
    net_arch: list[int] = Field([64, 64], min_length=1, description="hidden layer widths of policy and value MLPs")
    n_envs: int = Field(4, gt=0, description="envs stepped in one process (two cores: subprocesses lose)")
    episode_s: float | None = Field(None, gt=0, description="training and validation episode length; "
                                                            "default the scenario's training.episode_s")
    prior_logit: float = Field(2.5, ge=0, description="initial logit bias toward keeping every level at the "
                                                      "best batch size (actions.prior_logits); 0 disables")
    action_kind: Literal["fill"] = Field("fill", description="how actions decode (autotune.rl.actions)")
    sizing: Literal["predictive", "crowd"] = Field(
        "predictive", description="the load a headroom level multiplies (autotune.rl.observation)")
    crowd_factor: float = Field(3.0, ge=1, le=100, description="sizing=crowd: the surge over the calm load "
                                                               "insured at level 1.0")
    burst_guard: float = Field(0.0, ge=0, le=100, description="sizing=crowd: hold every level at >= 1.0 until "
                                                              "guard_calm_s pass without a burst this many x "
                                                              "the calm load; 0 disables")
    guard_calm_s: float = Field(1800.0, gt=0, le=86400, description="the burst guard's calm span, seconds")
    selection: Selection = Field("guarded", description="which validated checkpoint ships: 'guarded' (best score "
                                                        "among those keeping the prior's SLO on every validation "
                                                        "episode) or 'score' (best score)")
    leave_out: LeaveOut | None = Field(None, description="a traffic group no training episode comes from "
                                                         "(leave one family out); none: every group")
    mixed_capacity: MixedCapacity = Field(
        "measured", description="fleets mixing GPU types: 'measured' capacity or each type's 'added' up (faster "
                                "where exploration asks about many mixes)")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.burst_guard and not 1.0 < self.burst_guard:
            raise ValueError(f"burst_guard must be 0 (off) or a number above 1 and at most 100 "
                             f"(got {self.burst_guard:g})")
        if self.burst_guard and self.sizing != "crowd":  # only crowd levels below 1.0 give up insurance
            raise ValueError(f"burst_guard needs sizing=crowd (got {self.sizing!r})")
        return self

    def env_options(self) -> dict[str, Any]:
        """The decoding keywords of :class:`autotune.rl.env.RayServeClusterEnv`."""
        return {"sizing": self.sizing, "crowd_factor": self.crowd_factor, "burst_guard": self.burst_guard,
                "guard_calm_s": self.guard_calm_s, "mixed_capacity": self.mixed_capacity}

    def changed(self) -> dict[str, Any]:
        """The fields that differ from the defaults, in field order (what ``--set`` has to say)."""
        default = TrainConfig()
        return {k: getattr(self, k) for k in type(self).model_fields if getattr(self, k) != getattr(default, k)}


REWARD_KEYS = tuple(RewardSpec.model_fields)


def keys_help() -> str:
    """One line per ``--set`` key with its default and description."""
    lines = [f"  {name} (default {f.default!r}): {f.description}" for name, f in TrainConfig.model_fields.items()]
    lines += [f"  {k}: reward weight (default: the scenario's reward.{k})" for k in REWARD_KEYS]
    return "\n".join(lines)


def _error_message(key: str, err: dict[str, Any], raw: str) -> str:
    if err["type"] == "literal_error":
        return f"{key} must be one of {err['ctx']['expected'].replace(' or ', ', ')} (got {raw!r})"
    if err["type"] == "value_error":
        return str(err["ctx"]["error"])
    msg = str(err["msg"]).replace("Input should be", "must be").replace("List should have", "must have")
    return f"{key} {msg} (got {raw!r})"


def parse_set(pairs: list[str]) -> tuple[TrainConfig, dict[str, float]]:
    """``--set KEY=VALUE`` pairs: the training config and reward-weight overrides; values as JSON where they parse.

    Errors are one-line :class:`InputError` naming the key.
    """
    known = [*TrainConfig.model_fields, *REWARD_KEYS]
    fields: dict[str, Any] = {}
    raws: dict[str, str] = {}
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
        if key in REWARD_KEYS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
                    (key == "slo_cap" and value <= 0):
                raise InputError("command line", "--set",
                                 f"{key} must be a number {'> 0' if key == 'slo_cap' else '>= 0'} (got {raw!r})")
            reward[key] = float(value)
        else:
            fields[key], raws[key] = value, raw
    try:
        config = TrainConfig.model_validate(fields)
    except ValidationError as e:
        err = e.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        raise InputError("command line", "--set", _error_message(key, err, raws.get(key, ""))) from None
    return config, reward


def set_args(config: TrainConfig, reward: dict[str, float] | None = None) -> list[str]:
    """``--set`` arguments that reproduce ``config`` and the reward overrides."""
    pairs = {**config.changed(), **(reward or {})}
    out: list[str] = []
    for k, v in pairs.items():
        out += ["--set", f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}"]
    return out
