"""The what-if notebook runs top to bottom (with a short span of traffic)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "whatif.ipynb"


def test_whatif_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOTUNE_NB_DURATION", "300")
    monkeypatch.setenv("AUTOTUNE_NB_OUT", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert (tmp_path / "whatif_default.csv").read_text().startswith("policy,requests,slo_attainment")
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert os.path.getsize(tmp_path / "whatif_default.png") > 10_000


if __name__ == "__main__":
    pytest.main([__file__])
