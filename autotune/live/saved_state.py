"""The policy's state on disk, so a restarted controller resumes where it stopped.

The rules learn from what they have seen: ``predictive`` its recorded misses,
``burst`` its burst ratios, a ``+crowd`` floor the calm load, Ray's policy its
look-back window. A controller restarted with an empty state forgets all of it
and decides as on a cold start, holding the default margin until it has seen a
start-up lead of load again. With ``--state FILE`` the controller writes the
state after every decision (atomically: the file is the last state or the one
before, never half of one) and resumes it at start-up when the same policy
wrote it for the same scenario less than ``MAX_AGE_S`` ago. Policy time goes on
from where it stopped, so states that hold times (Ray's look-back) stay valid.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotune.core.types import PolicyState
from autotune.errors import InputError
from autotune.fileio import write_text_atomic

# Older than this, what the state remembers (the last minutes of load) says little about now.
MAX_AGE_S = 900.0


@dataclass(frozen=True)
class Saved:
    state: PolicyState
    t: float  # policy time (Observation.time_s) of the decision that produced it


def load_state(path: Path, policy: str, scenario: str, now: float,
               max_age_s: float = MAX_AGE_S) -> tuple[Saved | None, str]:
    """(what to resume, or None to start fresh; a note saying which and why). Raises InputError for a
    file that is not a saved state, or one saved by another policy or for another scenario."""
    if not path.exists():
        return None, f"no saved state at {path}: starting fresh"
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(path, None, f"not a saved policy state ({e})") from None
    if not isinstance(data, dict):
        raise InputError(path, None, "not a saved policy state (not a JSON object)")
    for key, want in (("policy", policy), ("scenario", scenario)):
        if data.get(key) != want:
            raise InputError(path, key, f"saved for {data.get(key)!r}, not {want!r} (remove the file to start fresh)")
    for key in ("saved_at", "t"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(path, key, "missing or not a number")
    if not isinstance(data.get("policy_state"), dict):
        raise InputError(path, "policy_state", "missing or not an object")
    age = now - float(data["saved_at"])
    if not 0 <= age <= max_age_s:
        return None, f"saved state is {age:.0f} s old (resumed only within {max_age_s:.0f} s): starting fresh"
    return Saved(data["policy_state"], float(data["t"])), f"resumed the policy state saved {age:.0f} s ago"


def save_state(path: Path, policy: str, scenario: str, now: float, t: float, state: PolicyState) -> None:
    """Write the state atomically (raises OSError, or TypeError for a state that is not plain data)."""
    text = json.dumps({"policy": policy, "scenario": scenario, "saved_at": now, "t": t, "policy_state": state})
    write_text_atomic(path, text)
