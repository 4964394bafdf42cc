"""The model card (``policies/NAME.json`` beside ``NAME.zip``): a validated schema of facts about one policy.

A card says how to decode the network (:class:`Decoding`: a policy decodes exactly as it was trained, or
as its card records it was changed after training), how it was trained and can be trained again
(:class:`TrainedFrom`, :class:`~autotune.rl.config.TrainConfig`, :class:`TrainingData`), how its
checkpoint was chosen and how it scores, and the zip's sha256, which is checked before SB3 unpickles
the zip (a zip is code-bearing). :func:`read_card` refuses a malformed card with a one-line
:class:`~autotune.errors.InputError` naming the card file and the field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autotune.errors import InputError
from autotune.policies.sizing import Capacity
from autotune.rl.actions import MOVES, ActionKind
from autotune.rl.config import MixedCapacity, Selection, TrainConfig
from autotune.rl.observation import INITIAL_LEVEL, LEVELS, FeatureContext, Sizing, make_context
from autotune.scenario import Scenario

CARD_VERSION = 2


class CardFieldError(ValueError):
    """A cross-field check that failed, with the field it is about (pydantic gives those no location)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Versions(_Strict):
    """The software the policy was trained with."""

    python: str
    torch: str
    stable_baselines3: str
    sb3_contrib: str


class TrainedFrom(_Strict):
    """How to train this network again."""

    command: str = Field(description="the `autotune train` command that writes this policy to policies/NAME.zip, "
                                     "or the `autotune optimize` command that fine-tuned it")
    code_commit: str | None = Field(None, pattern=r"^[0-9a-f]{7,40}$",
                                    description="git commit of the code the command runs against; None if the "
                                                "code was not committed")


class BurstGuard(_Strict):
    """``crowd`` sizing: every level at >= 1.0 and the best batch size until the load has been calm long enough."""

    ratio: float = Field(gt=1, le=100, description="a window above this many x the calm load is a burst")
    calm_s: float = Field(gt=0, le=86400, description="seconds without a burst before levels may go below 1.0")
    in_training: bool = Field(description="whether the network was trained under the guard; false: the guard was "
                                          "added to the decoding of a network trained without it (its learning "
                                          "curve and selection are without the guard, its evaluation with it)")


class Decoding(_Strict):
    """What ``load_policy`` needs to turn observations into the network's input and its actions into fleets."""

    action_kind: ActionKind = "fill"
    sizing: Sizing
    crowd_factor: float | None = Field(None, ge=1, le=100, description="sizing=crowd only")
    burst_guard: BurstGuard | None = Field(None, description="sizing=crowd only; None: no guard")
    mixed_capacity: MixedCapacity = Field(description="how fleets mixing GPU types were sized in training")
    levels: list[float] = Field(description="the headroom ladder a level move walks")
    moves: list[int] = Field(description="the level move each action index means")
    initial_level: float
    observation_size: int = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> Decoding:
        if (self.sizing == "crowd") != (self.crowd_factor is not None):
            raise CardFieldError("decoding.crowd_factor", "is required with sizing crowd and only then")
        if self.burst_guard is not None and self.sizing != "crowd":
            raise CardFieldError("decoding.burst_guard", f"needs sizing crowd (got {self.sizing!r})")
        # A ladder other than this code's would decode every action to another fleet without any error.
        for name, have, want in (("levels", self.levels, list(LEVELS)), ("moves", self.moves, list(MOVES)),
                                 ("initial_level", self.initial_level, INITIAL_LEVEL)):
            if have != want:
                raise CardFieldError(f"decoding.{name}", f"is {have}; this code decodes {want}")
        return self

    @classmethod
    def trained(cls, config: TrainConfig, observation_size: int) -> Decoding:
        """The decoding a policy trained with ``config`` needs."""
        crowd = config.sizing == "crowd"
        guard = BurstGuard(ratio=config.burst_guard, calm_s=config.guard_calm_s, in_training=True) \
            if config.burst_guard else None
        return cls(action_kind=config.action_kind, sizing=config.sizing,
                   crowd_factor=config.crowd_factor if crowd else None, burst_guard=guard,
                   mixed_capacity=config.mixed_capacity, levels=list(LEVELS), moves=list(MOVES),
                   initial_level=INITIAL_LEVEL, observation_size=observation_size)

    def context(self, scenario: Scenario, capacity: Capacity) -> FeatureContext:
        g = self.burst_guard
        return make_context(scenario, capacity, self.sizing,
                            **({"crowd_factor": self.crowd_factor} if self.crowd_factor is not None else {}),
                            **({"burst_guard": g.ratio, "guard_calm_s": g.calm_s} if g else {}),
                            measure_mixes=self.mixed_capacity == "measured")


class TrainingData(_Strict):
    """Where training episodes came from, and what evaluation keeps apart from them."""

    generators: list[str] = Field(description="synthetic generators drawn from, with random shapes")
    mean_rate_req_s: tuple[float, float] = Field(description="mean load range, drawn log-uniform")
    episode_s: float = Field(gt=0)
    seeds_from: int = Field(description="training episodes use synthetic seeds from this one on")
    traces: list[str] = Field(description="trace slices trained on")
    held_out_seeds: tuple[int, int] = Field(description="first and last seed of the benchmark and whatif, never "
                                                        "trained or validated on")
    held_out_traces: list[str]


class Episode(_Strict):
    label: str
    seed: int


class Checkpoint(_Strict):
    """One validation of the network during training (a learning-curve point)."""

    timesteps: int = Field(ge=0)
    wall_s: float = Field(ge=0)
    cost_usd: float
    slo_attainment: float
    episode_slo_after_warmup: list[float]
    min_episode_slo: float
    min_episode_slo_after_warmup: float
    cost_vs_ray_default: float
    score: float = Field(description="mean over episodes of cost / ray-default's + 100 x SLO shortfall after the "
                                     "warm-up; lower is better")
    learned: bool = Field(description="after at least one PPO update (the step-0 network is only the prior)")
    keeps_prior_slo: bool | None = Field(None, description="guarded selection: keeps the prior's floor on every "
                                                           "validation episode")


class ShippedSelection(_Strict):
    """How the shipped checkpoint was chosen from the learning curve."""

    rule: Selection
    tolerance: float | None = None
    prior_slo_after_warmup: list[float] | None = Field(None, description="the untrained prior's, per episode")
    floors: list[float] | None = Field(None, description="per episode: the prior's SLO, at most the target, "
                                                         "less the tolerance")
    kept: bool | None = Field(None, description="whether a learned checkpoint kept every floor (else the best "
                                                "score shipped)")
    shipped: Checkpoint

    @model_validator(mode="after")
    def _check(self) -> ShippedSelection:
        if self.rule == "guarded" and None in (self.tolerance, self.prior_slo_after_warmup, self.floors, self.kept):
            raise CardFieldError("selection", "guarded selection needs tolerance, prior_slo_after_warmup, floors "
                                              "and kept")
        return self


class EvaluationRow(_Strict):
    """A policy's totals over the evaluation episodes (cost summed, SLO request-weighted)."""

    policy: str
    cost_usd: float
    slo_attainment: float
    min_episode_slo: float
    min_episode_slo_after_warmup: float
    scale_actions: int


class RewardWeights(_Strict):
    cost_weight: float
    slo_weight: float
    churn_weight: float
    slo_cap: float
    slo_scale: float = Field(description="1 / (1 - SLO target): what one window's excess misses are scaled by")


class ModelCard(_Strict):
    card_version: Literal[2]
    policy: str = Field(min_length=1, description="the zip's name without .zip")
    scenario: str
    pools: list[str] = Field(min_length=1)
    algorithm: str
    versions: Versions
    trained_from: TrainedFrom
    timesteps: int = Field(gt=0)
    seed: int
    wall_time_s: float = Field(ge=0)
    hyperparameters: TrainConfig
    reward_weights: RewardWeights
    decoding: Decoding
    training_data: TrainingData
    validation_episodes: list[Episode] = Field(min_length=1, description="the learning curve's and the selection's")
    learning_curve: list[Checkpoint] = Field(min_length=1)
    selection: ShippedSelection
    evaluation_episodes: list[Episode] = Field(min_length=1, description="what `evaluation` ran, decoded as "
                                                                         "`decoding` says")
    evaluation: list[EvaluationRow] = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _check(self) -> ModelCard:
        out = f"--out policies/{self.policy}.zip"
        cmd = self.trained_from.command
        # `autotune optimize` fine-tunes a shipped policy on a user's traffic and writes it into its --out folder.
        if not cmd.startswith("autotune optimize ") and (not cmd.startswith("autotune train ")
                                                          or f"{out} " not in f"{cmd} "):
            raise CardFieldError("trained_from.command", f"must be an `autotune train` command with {out} "
                                                         "(or the `autotune optimize` command that fine-tuned it)")
        h, d = self.hyperparameters, self.decoding
        for name in ("action_kind", "sizing", "mixed_capacity"):
            if getattr(d, name) != getattr(h, name):
                raise CardFieldError(f"decoding.{name}", f"is {getattr(d, name)!r}, trained with "
                                                         f"{getattr(h, name)!r}")
        if d.crowd_factor is not None and d.crowd_factor != h.crowd_factor:
            raise CardFieldError("decoding.crowd_factor", f"is {d.crowd_factor:g}, trained with {h.crowd_factor:g}")
        g = d.burst_guard
        trained_guard = (g.ratio, g.calm_s) if g is not None and g.in_training else None
        if trained_guard != ((h.burst_guard, h.guard_calm_s) if h.burst_guard else None):
            raise CardFieldError("decoding.burst_guard", "disagrees with the hyperparameters' burst_guard and "
                                                         "guard_calm_s (in_training: false marks a guard added "
                                                         "after training)")
        if len(self.learning_curve[0].episode_slo_after_warmup) != len(self.validation_episodes):
            raise CardFieldError("learning_curve", "must have one SLO per validation episode")
        if not any(r.policy == f"rl:{self.policy}" for r in self.evaluation):
            raise CardFieldError("evaluation", f"has no row for rl:{self.policy}")
        return self

    def to_json(self) -> str:
        # Python-mode dump: NaN (an episode without requests after the warm-up) stays NaN, not null.
        return json.dumps(self.model_dump(), indent=2, allow_nan=True) + "\n"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_path(zip_path: str | Path) -> Path:
    return Path(zip_path).with_suffix(".json")


def _one_line(err: dict[str, Any]) -> tuple[str, str]:
    """(field, message) of a pydantic error."""
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, CardFieldError):
        return cause.field, str(cause)
    field = ".".join(str(x) for x in err["loc"]) or None
    msg = str(err["msg"]).replace("Value error, ", "")
    if "input" in err and err["type"] != "missing" and not isinstance(err["input"], (dict, list)):
        msg += f" (got {err['input']!r})"
    return field or "", " ".join(msg.split())


def parse_card(data: object, source: str | Path) -> ModelCard:
    """``data`` (a card's JSON) as a :class:`ModelCard`; a one-line InputError naming ``source`` and the field."""
    if not isinstance(data, dict):
        raise InputError(source, None, "a model card is a JSON object")
    if data.get("card_version") != CARD_VERSION:
        have = data.get("card_version")
        raise InputError(source, "card_version", f"{'missing' if have is None else f'is {have!r}'}; this "
                                                 f"autotune reads model cards of version {CARD_VERSION}")
    try:
        return ModelCard.model_validate(data)
    except ValidationError as e:
        field, msg = _one_line(e.errors()[0])
        raise InputError(source, field or None, msg) from None


def read_card(zip_path: str | Path) -> ModelCard:
    """The model card beside ``zip_path``, validated."""
    card = card_path(zip_path)
    try:
        data = json.loads(card.read_text())
    except FileNotFoundError:
        raise InputError(card, None, f"model card missing; it must sit beside {Path(zip_path).name}") from None
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(card, None, " ".join(f"unreadable model card ({e})".split())) from None
    return parse_card(data, card)


def verify(zip_path: str | Path) -> ModelCard:
    """The model card, once the zip's sha256 matches it; InputError otherwise."""
    path = Path(zip_path)
    if not path.is_file():
        raise InputError(path, None, "policy file does not exist")
    card = read_card(path)
    actual = sha256_file(path)
    if actual != card.sha256:
        raise InputError(path, "sha256", f"is {actual[:12]}..., model card {card_path(path).name} says "
                                         f"{card.sha256[:12]}...; refusing a modified policy file")
    return card

