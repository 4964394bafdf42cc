"""Shared test helpers: small scenarios built from the shipped ones."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from autotune.scenario import Scenario, load_scenario  # noqa: E402
from autotune.workload.arrivals import Arrivals  # noqa: E402


def tweak(scenario: Scenario, pool: dict | None = None, **fields: object) -> Scenario:
    """A copy of ``scenario`` with fields (and fields of its first pool) replaced, re-validated."""
    data = scenario.model_dump()
    if pool:
        data["pools"][0].update(pool)
    data.update(fields)
    return Scenario.model_validate(data)


def arrivals_at(times: list[float] | np.ndarray, duration: float, tokens: float = 0.0) -> Arrivals:
    t = np.asarray(times, dtype=np.float64)
    return Arrivals(t, np.full(t.size, tokens, dtype=np.float32), duration, "test")


@pytest.fixture(scope="session")
def default_scenario() -> Scenario:
    return load_scenario("default")
