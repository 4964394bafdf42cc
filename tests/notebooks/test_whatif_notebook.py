"""notebooks/whatif.ipynb runs top to bottom (a short span of traffic) on a copy, and its committed copy carries
its outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autotune.paths import ROOT
from tests.notebooks.outputs import execute_copy
from tests.notebooks.outputs import outputs as _outputs
from tests.notebooks.outputs import pngs as _pngs

NOTEBOOK = ROOT / "notebooks" / "whatif.ipynb"
POLICIES = ("static", "ray-default", "hpa", "predictive", "predictive+crowd:3", "oracle-startup", "oracle")


def test_committed_notebook_is_executed_with_its_figures() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "run `make notebooks` before committing"
    assert not [o for o in _outputs(nb) if o.output_type == "error"]
    assert _pngs(nb) >= 4


def test_whatif_notebook_executes_on_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTUNE_NB_DURATION", "300")
    nb = execute_copy(NOTEBOOK, tmp_path, timeout_s=600)
    assert _pngs(nb) >= 4  # the what-if plot, the runs over time, the latency tail, cost against load
    table = next(o["data"]["text/html"] for o in _outputs(nb) if "slo_attainment" in o.get("data", {}).get(
        "text/html", ""))
    assert all(f">{p}<" in table for p in POLICIES)
