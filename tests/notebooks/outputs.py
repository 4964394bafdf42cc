"""What the notebook tests read from an executed notebook."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import nbformat

from notebooks.execute import execute


def outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def pngs(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb))


def execute_copy(notebook: Path, tmp_path: Path, timeout_s: float) -> nbformat.NotebookNode:
    """Run a copy of ``notebook`` in ``tmp_path`` (raising at the first failing cell) and check it ran clean and
    left the committed file alone."""
    before = hashlib.sha256(notebook.read_bytes()).hexdigest()
    copy = tmp_path / notebook.name
    shutil.copy(notebook, copy)
    nb = execute(copy, tmp_path, timeout_s=timeout_s)
    assert not [o for o in outputs(nb) if o.output_type == "error"]
    assert hashlib.sha256(notebook.read_bytes()).hexdigest() == before
    return nb
