"""Execute the notebooks top to bottom and save them with their outputs (``make notebooks``).

The committed notebooks carry their outputs and figures so that they read on a code host without a kernel.
The tests run :func:`execute` on a temporary copy and never write the committed files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ("whatif.ipynb", "policies.ipynb")


def execute(path: Path, cwd: Path | None = None, timeout_s: int = 1800) -> nbformat.NotebookNode:
    """Run every cell of the notebook at ``path`` (in ``cwd``, by default its folder) and return it executed.

    Raises ``nbclient.exceptions.CellExecutionError`` at the first cell that fails. No execution timestamps are
    recorded: a re-run that changes nothing else leaves the saved file as it was.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout_s, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    client.execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", default=list(NOTEBOOKS), help="names in notebooks/ (default: all)")
    args = parser.parse_args(argv)
    for name in args.notebooks:
        path = HERE / Path(name).name
        print(f"executing {path.relative_to(HERE.parent)}", flush=True)
        nbformat.write(execute(path), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
