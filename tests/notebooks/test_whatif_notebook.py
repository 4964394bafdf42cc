"""notebooks/whatif.ipynb runs top to bottom (a short span of traffic) on a copy, and its committed copy carries
its outputs."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import nbformat
import pytest

from autotune.paths import ROOT
from notebooks.execute import execute

NOTEBOOK = ROOT / "notebooks" / "whatif.ipynb"
POLICIES = ("static", "ray-default", "hpa", "predictive", "predictive+crowd:3", "oracle-startup", "oracle")


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _pngs(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


def test_committed_notebook_is_executed_with_its_figures() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "run `make notebooks` before committing"
    assert not [o for o in _outputs(nb) if o.output_type == "error"]
    assert _pngs(nb) >= 4


def test_whatif_notebook_executes_on_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTUNE_NB_DURATION", "300")
    before = hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest()
    copy = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    nb = execute(copy, tmp_path, timeout_s=600)  # raises at the first cell that fails
    assert not [o for o in _outputs(nb) if o.output_type == "error"]
    assert _pngs(nb) >= 4  # the what-if plot, the runs over time, the latency tail, cost against load
    table = next(o["data"]["text/html"] for o in _outputs(nb) if "slo_attainment" in o.get("data", {}).get(
        "text/html", ""))
    assert all(f">{p}<" in table for p in POLICIES)
    assert hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest() == before  # the committed file is left alone
