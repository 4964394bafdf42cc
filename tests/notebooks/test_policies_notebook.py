"""notebooks/policies.ipynb runs end to end (short settings) against the shipped policies, on a copy, and its
committed copy carries its outputs."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import nbformat
import pytest

from autotune.benchmark.results import RESULTS, SCENARIOS
from autotune.paths import ROOT
from notebooks.execute import execute

NOTEBOOK = ROOT / "notebooks" / "policies.ipynb"


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _pngs(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


def test_committed_notebook_is_executed_with_its_figures() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code"), \
        "run `make notebooks` before committing"
    assert not [o for o in _outputs(nb) if o.output_type == "error"]
    assert _pngs(nb) >= 5


@pytest.mark.slow  # about a minute on two cores: three trained policies loaded and a dozen simulated runs
def test_policies_notebook_executes_on_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTUNE_NB_QUICK", "1")
    before = hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest()
    copy = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    nb = execute(copy, tmp_path, timeout_s=900)  # raises at the first cell that fails
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    # learning curves; default, mixed and mixed-large decisions; the Azure trace; the held-out cases if any
    present = [s for s in SCENARIOS if (RESULTS / f"heldout-{s}.csv").exists()]
    assert _pngs(nb) >= 5 + bool(present)
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    for name in present:
        assert f"{name}: " in html and "held-out cases" in html
    assert all(f"rl:{name}" in html for name in SCENARIOS)
    assert hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest() == before  # the committed file is left alone
