"""notebooks/policies.ipynb runs end to end (short settings) against the shipped policies."""

from __future__ import annotations

import os

import nbformat
from nbclient import NotebookClient

from autotune.paths import ROOT


def test_policies_notebook_executes() -> None:
    nb = nbformat.read(ROOT / "notebooks" / "policies.ipynb", as_version=4)
    os.environ["AUTOTUNE_NB_QUICK"] = "1"
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        os.environ.pop("AUTOTUNE_NB_QUICK", None)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                 if "image/png" in o.get("data", {}))
    assert images >= 5  # learning curve, mixed and mixed-large timelines, trace timeline
    # the bursty-hours section shows each committed burst_scan result: a table and a histogram per file
    burst = next(c for c in nb.cells if c.cell_type == "code" and "burst_scan-" in c.source)
    shown = [o for o in burst.get("outputs", []) if o.output_type == "display_data"]
    assert sum("image/png" in o.get("data", {}) for o in shown) >= 2
    assert any("burst_scan-default" in o.get("data", {}).get("text/html", "") for o in shown)
