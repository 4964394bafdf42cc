"""Reading trace files: request traces (one row a request) and rate traces (counts per bin).

Formats:
- request trace: a ``TIMESTAMP`` column (datetime, the Azure LLM trace format) or an
  ``arrival_s`` column (seconds); optional token column ``ContextTokens`` or ``tokens``.
- rate trace: ``start_s,requests``: a request count per bin starting at ``start_s``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.errors import InputError

TOKEN_COLUMNS = ("ContextTokens", "tokens")


@dataclass(frozen=True)
class RequestTrace:
    arrival_s: np.ndarray  # float64, sorted, starting at 0
    tokens: np.ndarray  # float32, 0 where the trace has none
    source: str


@dataclass(frozen=True)
class RateTrace:
    start_s: np.ndarray  # float64, increasing, starting at 0
    width_s: np.ndarray  # float64, bin widths
    counts: np.ndarray  # int64, >= 0
    source: str


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as e:
        raise InputError(path, None, f"cannot read ({e.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(path, None, f"not a CSV text file ({e})") from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise InputError(path, None, "empty file")
    header = [c.strip() for c in rows[0]]
    if len(rows) < 2:
        raise InputError(path, None, "no data rows after the header")
    return header, rows[1:]


def _column(path: Path, header: list[str], rows: list[list[str]], name: str) -> list[str]:
    idx = header.index(name)
    out = []
    for lineno, row in enumerate(rows, start=2):
        if idx >= len(row) or not row[idx].strip():
            raise InputError(path, f"{name} (line {lineno})", "missing value")
        out.append(row[idx].strip())
    return out


def _numbers(path: Path, name: str, values: list[str], dtype: type = float) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except ValueError:
        for lineno, v in enumerate(values, start=2):
            try:
                float(v)
            except ValueError:
                raise InputError(path, f"{name} (line {lineno})", f"not a number: {v!r}") from None
        raise
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(path, f"{name} (line {bad[0] + 2})", "not a finite number")
    if dtype is int and np.any(arr != np.floor(arr)):
        line = int(np.flatnonzero(arr != np.floor(arr))[0]) + 2
        raise InputError(path, f"{name} (line {line})", "not a whole number")
    return arr


def _check_sorted(path: Path, name: str, arr: np.ndarray) -> None:
    back = np.flatnonzero(np.diff(arr) < 0)
    if back.size:
        raise InputError(path, f"{name} (line {back[0] + 3})", "values go backwards (unsorted)")


def read_trace(path: str | Path) -> RequestTrace | RateTrace:
    """Read a request or rate trace, validating every field."""
    path = Path(path)
    header, rows = _read_rows(path)
    if "start_s" in header or "requests" in header:
        for col in ("start_s", "requests"):
            if col not in header:
                raise InputError(path, col, f"missing column (have: {', '.join(header)})")
        start = _numbers(path, "start_s", _column(path, header, rows, "start_s"))
        counts = _numbers(path, "requests", _column(path, header, rows, "requests"), int)
        neg = np.flatnonzero(counts < 0)
        if neg.size:
            raise InputError(path, f"requests (line {neg[0] + 2})", "negative count")
        dup = np.flatnonzero(np.diff(start) <= 0)
        if dup.size:
            raise InputError(path, f"start_s (line {dup[0] + 3})", "bins must be strictly increasing")
        width = np.diff(start)
        width = np.append(width, width[-1] if width.size else 1.0)
        return RateTrace(start - start[0], width, counts.astype(np.int64), str(path))

    if "TIMESTAMP" in header:
        raw = _column(path, header, rows, "TIMESTAMP")
        try:
            stamps = np.array(raw, dtype="datetime64[ns]")
        except ValueError:
            for lineno, v in enumerate(raw, start=2):
                try:
                    np.datetime64(v, "ns")
                except ValueError:
                    raise InputError(path, f"TIMESTAMP (line {lineno})", f"not a datetime: {v!r}") from None
            raise
        t = (stamps - stamps[0]).astype(np.float64) / 1e9
        _check_sorted(path, "TIMESTAMP", t)
    elif "arrival_s" in header:
        t = _numbers(path, "arrival_s", _column(path, header, rows, "arrival_s"))
        _check_sorted(path, "arrival_s", t)
        t = t - t[0]
    else:
        raise InputError(
            path, "TIMESTAMP",
            f"missing column: need TIMESTAMP or arrival_s (request trace) or start_s,requests (rate trace); "
            f"have: {', '.join(header)}",
        )
    tokens = np.zeros(t.size, dtype=np.float32)
    for col in TOKEN_COLUMNS:
        if col in header:
            tok = _numbers(path, col, _column(path, header, rows, col))
            neg = np.flatnonzero(tok < 0)
            if neg.size:
                raise InputError(path, f"{col} (line {neg[0] + 2})", "negative token count")
            tokens = tok.astype(np.float32)
            break
    return RequestTrace(t, tokens, str(path))
