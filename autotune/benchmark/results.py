"""Where the committed benchmark results live, and loaders for notebooks and the report.

``bench/results/heldout-<scenario>[-noguards].csv`` holds one row per case x policy and ``.json`` the summary
per policy; ``price_breakdown-<scenario>.csv`` / ``.json`` the price breakdown; ``sim_throughput.json`` the
simulator's speed; ``side_by_side.json`` the live side-by-side.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from autotune.fileio import write_atomic, write_text_atomic
from autotune.paths import ROOT

if TYPE_CHECKING:  # pandas only where a notebook asks for a frame
    import pandas as pd

RESULTS = ROOT / "bench" / "results"
SCENARIOS = ("default", "mixed", "mixed-large")  # the scenarios the committed results cover
HELDOUT_COLUMNS = ("case", "family", "group", "policy", "requests", "slo_attainment", "slo_after_warmup",
                   "cost_usd", "p99_ms")


class MissingResult(FileNotFoundError):
    """A results file the caller needs is not there; the message is one line naming it and how to make it."""

    def __init__(self, path: Path, how: str) -> None:
        self.path = path
        super().__init__(f"{_shown(path)} is missing (run {how})")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


GUARDS = ("live", "none")  # the live controller's guards (the simulator's default), or the pools' bounds alone


def heldout_stem(scenario: str, guards: str = "live") -> str:
    if guards not in GUARDS:
        raise ValueError(f"guards must be one of {GUARDS}, not {guards!r}")
    return f"heldout-{scenario}" + ("-noguards" if guards == "none" else "")


def heldout_command(scenario: str, guards: str = "live") -> str:
    return f".venv/bin/python bench/heldout.py --scenario {scenario}" + ("" if guards == "live" else " --guards none")


def price_stem(scenario: str) -> str:
    return f"price_breakdown-{scenario}"


def price_command(scenario: str) -> str:
    return f".venv/bin/python bench/price_breakdown.py --scenario {scenario}"


def clean(value: Any) -> Any:
    """JSON has no NaN: a measure with nothing to measure (no request after the warm-up) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def read_json(path: Path, how: str) -> dict[str, Any]:
    if not path.exists():
        raise MissingResult(path, how)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def read_heldout_rows(scenario: str, guards: str = "live", folder: Path = RESULTS) -> list[dict[str, Any]]:
    """The rows of ``heldout-<scenario>.csv``, numbers as numbers (for code that does without pandas)."""
    path = folder / f"{heldout_stem(scenario, guards)}.csv"
    if not path.exists():
        raise MissingResult(path, heldout_command(scenario, guards))
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    text = ("case", "family", "group", "policy")
    return [{k: (v if k in text else int(v) if k == "requests" else float(v)) for k, v in r.items()} for r in rows]


def _frame(path: Path, how: str) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise MissingResult(path, how)
    return pd.read_csv(path)


def load_heldout(scenario: str, guards: str = "live", folder: Path = RESULTS) -> pd.DataFrame:
    """One row per case x policy (:data:`HELDOUT_COLUMNS`), from ``heldout-<scenario>.csv``; ``guards="none"``
    for the run with the pools' bounds alone."""
    return _frame(folder / f"{heldout_stem(scenario, guards)}.csv", heldout_command(scenario, guards))


def load_heldout_summary(scenario: str, guards: str = "live", folder: Path = RESULTS) -> dict[str, Any]:
    """The summary per policy, the command and the wall time of a held-out run."""
    return read_json(folder / f"{heldout_stem(scenario, guards)}.json", heldout_command(scenario, guards))


def load_price_breakdown(scenario: str, folder: Path = RESULTS) -> pd.DataFrame:
    """One row per policy or plan: what it pays above the oracle, and how that splits (``price_breakdown``)."""
    return _frame(folder / f"{price_stem(scenario)}.csv", price_command(scenario))


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.6g}"
    return str(v)


def write_result(folder: Path, stem: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]],
                 document: Mapping[str, Any]) -> tuple[Path, Path]:
    """``STEM.csv`` (``rows`` under ``columns``) and ``STEM.json`` (``document``), each written atomically."""
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"

    def table(fh: IO[str]) -> None:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        w.writerows([_cell(r[c]) for c in columns] for r in rows)

    write_atomic(csv_path, table)
    write_text_atomic(json_path, json.dumps(document, indent=1) + "\n")
    return csv_path, json_path
