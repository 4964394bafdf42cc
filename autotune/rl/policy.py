"""A trained policy behind the ordinary :class:`~autotune.core.types.Policy` protocol.

``load_policy("policies/default.zip", scenario)`` checks the zip's sha256
against the model card beside it (``policies/default.json``) before SB3 ever
unpickles it: a zip is code-bearing, so a replaced or corrupted file is
refused with an :class:`~autotune.errors.InputError` naming it. Inference is
torch on one thread; no Ray.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autotune.core.types import Decision, Observation, PolicyState
from autotune.errors import InputError
from autotune.policies.sizing import Capacity
from autotune.rl import features as F
from autotune.scenario import Scenario


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_path(zip_path: str | Path) -> Path:
    return Path(zip_path).with_suffix(".json")


def read_card(zip_path: str | Path) -> dict[str, Any]:
    card = card_path(zip_path)
    try:
        data = json.loads(card.read_text())
    except FileNotFoundError:
        raise InputError(card, None, f"model card missing; it must sit beside {Path(zip_path).name}") from None
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(card, None, f"unreadable model card ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sha256"), str):
        raise InputError(card, "sha256", "model card has no sha256 for the policy zip")
    return data


def verify(zip_path: str | Path) -> dict[str, Any]:
    """The model card, once the zip's sha256 matches it; InputError otherwise."""
    path = Path(zip_path)
    if not path.is_file():
        raise InputError(path, None, "policy file does not exist")
    card = read_card(path)
    actual = sha256_file(path)
    if actual != card["sha256"]:
        raise InputError(path, "sha256", f"is {actual[:12]}..., model card {card_path(path).name} says "
                                         f"{card['sha256'][:12]}...; refusing a modified policy file")
    return card


@dataclass
class RLPolicy:
    """Deterministic actions of a trained SB3 model, decoded by :mod:`autotune.rl.features`."""

    model: Any  # sb3_contrib.MaskablePPO (kept untyped so importing this module needs no torch)
    ctx: F.FeatureContext
    name: str = "rl"

    def initial_state(self) -> PolicyState:
        return F.initial_state(self.ctx)

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        state = F.update_state(state, obs, self.ctx)
        x = F.features(obs, state, self.ctx)
        action, _ = self.model.predict(x, deterministic=True, action_masks=F.action_mask(obs, self.ctx))
        return F.decode_action(np.asarray(action).reshape(-1), obs, state, self.ctx)


def check_compatible(card: dict[str, Any], scenario: Scenario, source: Path) -> None:
    """The network's input and output sizes depend on the pools; refuse a mismatch clearly."""
    pools = card.get("pools")
    mine = [p.name for p in scenario.pools]
    if pools is not None and list(pools) != mine:
        raise InputError(source, "pools", f"policy was trained for pools {pools}, scenario {scenario.name} has {mine}")


def load_policy(path: str | Path, scenario: Scenario, capacity: Capacity | None = None) -> RLPolicy:
    """Load a trained policy for ``scenario`` after verifying its sha256."""
    path = Path(path)
    card = verify(path)
    check_compatible(card, scenario, card_path(path))
    import torch
    from sb3_contrib import MaskablePPO

    from autotune.sim.capacity import measure_capacity

    torch.set_num_threads(1)  # small MLP: one thread is faster than two here
    try:
        model = MaskablePPO.load(path, device="cpu")
    except Exception as e:  # a zip that hashes right but is not an SB3 model
        raise InputError(path, None, f"not a loadable SB3 MaskablePPO model ({type(e).__name__}: {e})") from None
    # Same decoding as in training: the action kind and scale-down limit the policy was trained with (card).
    try:
        kind = F.action_kind_of(card)
    except ValueError as e:
        raise InputError(card_path(path), "action.kind", str(e)) from None
    try:
        sizing = F.sizing_of(card)
    except ValueError as e:
        raise InputError(card_path(path), "features.sizing", str(e)) from None
    try:
        crowd = F.crowd_factor_of(card)
    except ValueError as e:
        raise InputError(card_path(path), "features.crowd_factor", str(e)) from None
    try:
        guard = F.burst_guard_of(card)
    except ValueError as e:  # the message starts with the field it is about
        field = "guard_calm_s" if str(e).startswith("guard_calm_s") else "burst_guard"
        raise InputError(card_path(path), f"features.{field}", str(e)) from None
    try:
        measure = F.measure_mixes_of(card)
    except ValueError as e:
        raise InputError(card_path(path), "features.mixed_capacity", str(e)) from None
    try:
        ctx = F.make_context(scenario, capacity or measure_capacity(scenario), F.max_down_fraction_of(card), kind,
                             sizing, crowd, *guard, measure)
    except ValueError as e:
        raise InputError(card_path(path), "features.burst_guard" if guard[0] and sizing != "crowd"
                         else "features.sizing", str(e)) from None
    if model.observation_space.shape != (ctx.obs_size,):
        raise InputError(path, "observation_space", f"expects {model.observation_space.shape}, "
                                                    f"scenario {scenario.name} gives ({ctx.obs_size},)")
    return RLPolicy(model, ctx, name=f"rl:{path.stem}")
