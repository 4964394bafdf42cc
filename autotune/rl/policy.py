"""A trained policy behind the ordinary :class:`~autotune.core.types.Policy` protocol.

``load_policy("policies/default.zip", scenario)`` validates the model card beside the zip
(``policies/default.json``, :mod:`autotune.rl.card`) and checks the zip's sha256 against it before SB3 ever
unpickles it: a zip is code-bearing, so a replaced or corrupted file is refused with an
:class:`~autotune.errors.InputError` naming it. The network then decodes as its card says. Inference is torch
on one thread; no Ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autotune.core.types import Decision, Observation, PolicyState
from autotune.errors import InputError
from autotune.policies.sizing import Capacity
from autotune.rl.actions import action_mask, decode_action
from autotune.rl.card import ModelCard, card_path, verify
from autotune.rl.observation import FeatureContext, features, initial_state, update_state
from autotune.scenario import Scenario


@dataclass
class RLPolicy:
    """Deterministic actions of a trained SB3 model, encoded and decoded by :mod:`autotune.rl.observation` and
    :mod:`autotune.rl.actions`."""

    model: Any  # sb3_contrib.MaskablePPO (kept untyped so importing this module needs no torch)
    ctx: FeatureContext
    name: str = "rl"

    def initial_state(self) -> PolicyState:
        return initial_state(self.ctx)

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        state = update_state(state, obs, self.ctx)
        x = features(obs, state, self.ctx)
        action, _ = self.model.predict(x, deterministic=True, action_masks=action_mask(self.ctx))
        return decode_action(np.asarray(action).reshape(-1), state, self.ctx)


def check_compatible(card: ModelCard, scenario: Scenario, source: Path) -> None:
    """The network's input and output sizes depend on the pools; refuse a mismatch clearly."""
    mine = [p.name for p in scenario.pools]
    if card.pools != mine:
        raise InputError(source, "pools", f"policy was trained for pools {card.pools}, scenario {scenario.name} "
                                          f"has {mine}")


def load_policy(path: str | Path, scenario: Scenario, capacity: Capacity | None = None) -> RLPolicy:
    """Load a trained policy for ``scenario`` after validating its card and verifying its sha256."""
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
    ctx = card.decoding.context(scenario, capacity or measure_capacity(scenario))
    if model.observation_space.shape != (ctx.obs_size,):
        raise InputError(path, "observation_space", f"expects {model.observation_space.shape}, "
                                                    f"scenario {scenario.name} gives ({ctx.obs_size},)")
    if card.decoding.observation_size != ctx.obs_size:
        raise InputError(card_path(path), "decoding.observation_size",
                         f"is {card.decoding.observation_size}, scenario {scenario.name} gives {ctx.obs_size}")
    return RLPolicy(model, ctx, name=f"rl:{path.stem}")
