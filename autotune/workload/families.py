"""Generators that make arrival times themselves (not a per-second rate curve): the traffic families'.

Each takes (mean req/s, duration s, params, rng) and returns sorted arrival times and their token counts
(None: synthetic tokens). ``WorkloadSpec(kind="synthetic", generator=NAME, params=...)`` selects one by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np

from autotune.workload import clumps, crowds, spiky, worldcup

Sampler = Callable[[float, float, Mapping[str, float], np.random.Generator], tuple[np.ndarray, np.ndarray | None]]

SAMPLERS: dict[str, Sampler] = {
    "crowds": crowds.sample,
    "spiky": spiky.sample,
    "llm-clumped": clumps.sample,
    "worldcup": worldcup.sample,
}

# The kinds of traffic the benchmark reports by and training can leave out whole.
Group = Literal["synthetic-shapes", "daily", "crowds", "llm", "spiky"]
GROUPS: tuple[Group, ...] = ("synthetic-shapes", "daily", "crowds", "llm", "spiky")
