"""The README's demo table: what ``make demo`` prints, written to bench/results/demo.json.

    .venv/bin/python bench/demo.py

Runs ``autotune whatif --scenario default`` (the default policy set, seed 0) through the same call and keeps
its summary rows and the verdict line under the table, for ``make results``.
"""

from __future__ import annotations

import json
import time

from autotune.benchmark.results import RESULTS, clean
from autotune.fileio import write_text_atomic
from autotune.sim.run import SUMMARY_COLUMNS
from autotune.whatif import run

COMMAND = "autotune whatif --scenario default"


def main() -> int:
    t0 = time.monotonic()
    result = run("default")
    doc = {"command": COMMAND, "columns": list(SUMMARY_COLUMNS), "rows": clean(result.rows()),
           "verdict": result.verdict(), "wall_s": round(time.monotonic() - t0, 1)}
    path = RESULTS / "demo.json"
    write_text_atomic(path, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
