"""A short recorded traffic for the optimize tests: a rate trace, 25 minutes of per-minute counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_rate_trace(path: Path, minutes: int, mean: float = 1200.0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    shape = 1.0 + 0.5 * np.sin(np.linspace(0.0, 2.0 * np.pi, minutes))
    counts = rng.poisson(mean * shape)
    path.write_text("start_s,requests\n" + "".join(f"{60 * k},{c}\n" for k, c in enumerate(counts)))
    return path


@pytest.fixture
def short_trace(tmp_path: Path) -> Path:
    return write_rate_trace(tmp_path / "traffic.csv", 25)
