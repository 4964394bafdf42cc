"""notebooks/policies.ipynb runs end to end (short settings) against the shipped policies, on a copy, and its
committed copy carries its outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autotune.benchmark.results import RESULTS, SCENARIOS
from autotune.paths import ROOT
from tests.notebooks.outputs import execute_copy
from tests.notebooks.outputs import outputs as _outputs
from tests.notebooks.outputs import pngs as _pngs

NOTEBOOK = ROOT / "notebooks" / "policies.ipynb"


def test_committed_notebook_is_executed_with_its_figures() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code"), \
        "run `make notebooks` before committing"
    assert not [o for o in _outputs(nb) if o.output_type == "error"]
    assert _pngs(nb) >= 5


@pytest.mark.slow  # about a minute on two cores: three trained policies loaded and a dozen simulated runs
def test_policies_notebook_executes_on_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTUNE_NB_QUICK", "1")
    nb = execute_copy(NOTEBOOK, tmp_path, timeout_s=900)
    outputs = _outputs(nb)
    # learning curves; default, mixed and mixed-large decisions; the Azure trace; the held-out cases if any
    present = [s for s in SCENARIOS if (RESULTS / f"heldout-{s}.csv").exists()]
    assert _pngs(nb) >= 5 + bool(present)
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    for name in present:
        assert f"{name}: " in html and "held-out cases" in html
    assert all(f"rl:{name}" in html for name in SCENARIOS)
