"""``autotune optimize`` on one hour of a real trace, timed: the later part's figures of the chosen policy against
the shipped default policy and ray-default.

    .venv/bin/python bench/optimize.py --scenario default

runs, on a private local Ray, ``autotune optimize`` on day 0 of the NASA HTTP trace compressed into an hour at a
mean of 300 req/s (the held-out case ``nasa-day0@300``) with the full candidate family (10 candidates, with the
Ray Tune re-tuning and a small fine-tuning budget), and writes ``bench/results/optimize-<scenario>.json``: the
command, the wall time, the chosen candidate, and on the report part its cost and SLO attainment next to the
shipped policy's and ray-default's.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from autotune.cli import main as cli_main  # noqa: E402
from autotune.fileio import write_text_atomic  # noqa: E402
from autotune.paths import ROOT  # noqa: E402

TRACE = "traces/nasa_http_1995_per_minute.csv"


def _relative(path: str) -> str:
    """A path inside the checkout as the checkout names it, so the result does not depend on where it ran."""
    from autotune.paths import ROOT

    p = Path(path)
    return str(p.relative_to(ROOT)) if p.is_absolute() and p.is_relative_to(ROOT) else path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--mean-rate", type=float, default=300.0)
    ap.add_argument("--tune-trials", type=int, default=8)
    ap.add_argument("--fine-tune-steps", type=int, default=4096)
    ap.add_argument("--out", help="the optimize output folder (default /tmp/autotune-bench-optimize-SCENARIO)")
    args = ap.parse_args(argv)
    out = Path(args.out or f"/tmp/autotune-bench-optimize-{args.scenario}")
    cmd = ["optimize", "--scenario", args.scenario, "--trace", TRACE, "--time-scale", repr(1 / 24),
           "--duration", "3600", "--mean-rate", f"{args.mean_rate:g}", "--tune-trials", str(args.tune_trials),
           "--fine-tune-steps", str(args.fine_tune_steps), "--out", str(out)]
    t0 = time.monotonic()
    sys.argv = ["autotune", *cmd]
    rc = cli_main(cmd)
    wall = time.monotonic() - t0
    if rc:
        return rc
    chosen = json.loads((out / "chosen.json").read_text())
    rows = [r for r in (out / "report.csv").read_text().splitlines()[1:]]
    header = (out / "report.csv").read_text().splitlines()[0].split(",")
    table = [dict(zip(header, r.split(","), strict=True)) for r in rows]
    later = {r["candidate"]: {"cost_usd": float(r["cost_usd"]), "slo_attainment": float(r["slo_attainment"])}
             for r in table if r["part"] == "report"}
    result = {"command": shlex.join(["autotune", *cmd]), "wall_time_s": round(wall, 1),
              "candidates": sorted({r["candidate"] for r in table}), "chosen": chosen["chosen"],
              "report_part": {"chosen": later[chosen["chosen"]], "shipped": later.get("shipped"),
                              "ray-default": later.get("ray-default")},
              "comparisons": chosen["report_part_comparisons"],
              "split": {**chosen["split"], "trace": _relative(chosen["split"]["trace"])}}
    path = ROOT / "bench" / "results" / f"optimize-{args.scenario}.json"
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path} ({wall:,.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
