"""Prometheus text exposition → samples, and counter/histogram arithmetic on them.

Pure functions only: the controller scrapes twice and subtracts, so a rate or a
percentile over a control window comes from counter and bucket differences, the
way PromQL's ``rate()`` and ``histogram_quantile()`` compute them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]
# metric name -> list of (labels, value); several nodes' scrapes are concatenated.
Scrape = dict[str, list[tuple[Labels, float]]]

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def _unescape(v: str) -> str:
    return v.replace(r"\\", "\x00").replace(r"\"", '"').replace(r"\n", "\n").replace("\x00", "\\")


def _value(s: str) -> float:
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    return float(s)  # "NaN" parses as nan


def parse_prometheus(text: str) -> Scrape:
    """Parse the text format; malformed lines are skipped (one bad exporter line must not blind us)."""
    out: Scrape = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            continue
        name, _, body, value = m.group(1), m.group(2), m.group(3), m.group(4)
        try:
            v = _value(value)
        except ValueError:
            continue
        labels: Labels = tuple(sorted((k, _unescape(x)) for k, x in _LABEL.findall(body or "")))
        out.setdefault(name, []).append((labels, v))
    return out


def merge(scrapes: Iterable[Scrape]) -> Scrape:
    """Concatenate scrapes of several nodes' endpoints (sums then run across all of them)."""
    out: Scrape = {}
    for s in scrapes:
        for name, rows in s.items():
            out.setdefault(name, []).extend(rows)
    return out


def _matches(labels: Labels, match: Mapping[str, str]) -> bool:
    d = dict(labels)
    return all(d.get(k) == v for k, v in match.items())


def total(scrape: Scrape, name: str, match: Mapping[str, str] | None = None) -> float:
    """Sum of every series of ``name`` whose labels include ``match`` (0 when absent)."""
    return sum(v for labels, v in scrape.get(name, ()) if _matches(labels, match or {}))


def has(scrape: Scrape, name: str, match: Mapping[str, str] | None = None) -> bool:
    return any(_matches(labels, match or {}) for labels, _ in scrape.get(name, ()))


@dataclass(frozen=True)
class Histogram:
    """Cumulative buckets (upper bound, count) sorted by bound, ending at +Inf."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    sum: float

    @property
    def empty(self) -> bool:
        return self.count <= 0


def histogram(scrape: Scrape, name: str, match: Mapping[str, str] | None = None) -> Histogram:
    """Sum the ``name_bucket`` series matching ``match`` into one histogram."""
    by_le: dict[float, float] = {}
    for labels, v in scrape.get(f"{name}_bucket", ()):
        if not _matches(labels, match or {}):
            continue
        le = dict(labels).get("le")
        if le is None:
            continue
        try:
            bound = _value(le)
        except ValueError:
            continue
        by_le[bound] = by_le.get(bound, 0.0) + v
    count = total(scrape, f"{name}_count", match)
    if math.inf not in by_le and by_le:
        by_le[math.inf] = count
    return Histogram(tuple(sorted(by_le.items())), count, total(scrape, f"{name}_sum", match))


def counter_delta(before: float, after: float) -> float:
    """Increase of a counter; a drop means the process restarted, so ``after`` is all new."""
    return after - before if after >= before else after


def histogram_delta(before: Histogram, after: Histogram) -> Histogram:
    """Requests observed between two scrapes (a reset counts everything since it)."""
    if after.count < before.count:
        return after
    old = dict(before.buckets)
    buckets = tuple((le, max(0.0, c - old.get(le, 0.0))) for le, c in after.buckets)
    return Histogram(buckets, after.count - before.count, after.sum - before.sum)


def quantile(h: Histogram, q: float) -> float:
    """``histogram_quantile``: linear interpolation within the bucket holding rank q·count."""
    if h.empty or not h.buckets:
        return math.nan
    rank = q * h.buckets[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in h.buckets:
        if c >= rank and c > prev_c:
            if math.isinf(le):
                return prev_le  # the highest finite bound, as Prometheus does
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def fraction_at_most(h: Histogram, x: float) -> float:
    """Fraction of observations ≤ x, interpolating linearly inside x's bucket."""
    if h.empty or not h.buckets:
        return math.nan
    n = h.buckets[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in h.buckets:
        if x <= le:
            if math.isinf(le):
                return prev_c / n
            return (prev_c + (c - prev_c) * (x - prev_le) / (le - prev_le)) / n
        prev_le, prev_c = le, c
    return 1.0
