"""The recorded traffic cut in time: the earlier part to choose on, the later part to report on, both in slices.

A slice is simulated from the scenario's initial fleet, so each one opens with a *lead-in*: the traffic just before
it (up to ``lead_s``), simulated but not scored, so the fleet and the policy's state have caught up with the load
when the scored span begins. Only the very first slice of the trace has no traffic before it; its first
``warmup_s`` are the lead-in instead, as for every policy on a cold start
(:func:`autotune.rl.evaluation.warmup_s`). The report part's first lead-in is the choose part's last minutes: they
set the fleet, they are never scored, so no reported request was seen by the choice.

Cost is counted over the control windows of the scored span (a slice's drain after its end belongs to the next
slice's lead-in), SLO attainment over the requests arriving in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autotune.errors import InputError
from autotune.workload.arrivals import Arrivals

PARTS = ("choose", "report")
LEAD_S = 600.0


@dataclass(frozen=True)
class Slice:
    """One scored span of the traffic and the arrivals that simulate it (lead-in first, times from 0)."""

    part: str  # "choose" or "report"
    index: int  # within its part
    start_s: float  # the scored span in the trace's time
    end_s: float
    arrivals: Arrivals  # from the lead-in's start, times from 0
    scored_from_s: float  # in the slice's time: requests arriving and windows starting from here count

    @property
    def key(self) -> str:
        return f"{self.part}-{self.index}"


@dataclass(frozen=True)
class Split:
    choose: Arrivals  # the earlier part, times from 0
    report: Arrivals  # the later part, times from 0
    boundary_s: float  # where the later part starts, in the trace's time
    slices: tuple[Slice, ...]  # the choose part's slices, then the report part's

    def of(self, part: str) -> list[Slice]:
        return [s for s in self.slices if s.part == part]


def _window(arr: Arrivals, t0: float, t1: float, source: str) -> Arrivals:
    lo, hi = np.searchsorted(arr.times, [t0, t1], side="left")
    return Arrivals(arr.times[lo:hi] - t0, arr.tokens[lo:hi], float(t1 - t0), source)


def _snap(t: float, step: float) -> float:
    return round(t / step) * step


def _edges(t0: float, t1: float, slice_s: float, step: float) -> list[float]:
    n = 1 if slice_s <= 0 else max(1, round((t1 - t0) / slice_s))
    inner = [_snap(t0 + (t1 - t0) * k / n, step) for k in range(1, n)]
    return [t0, *sorted(set(e for e in inner if t0 < e < t1)), t1]


def split(arr: Arrivals, share: float, slice_s: float, step_s: float, warmup_s: float,
          lead_s: float = LEAD_S, source: str | None = None) -> Split:
    """The first ``share`` of ``arr`` (snapped to the control interval ``step_s``) to choose on, the rest to
    report on, each cut into slices of about ``slice_s`` (0: one slice a part) with lead-ins of ``lead_s``.

    Each part must be at least twice ``warmup_s`` long, so the choose part's first slice has a scored span as long
    as its lead-in; a shorter trace is an :class:`InputError` naming ``source``.
    """
    where = source or arr.source
    if not 0 < share < 1:
        raise InputError("command line", "--choose-share", f"must be between 0 and 1 (got {share:g})")
    boundary = _snap(arr.duration_s * share, step_s)
    need = max(2.0 * warmup_s, 2.0 * step_s)
    later = arr.duration_s - boundary
    if boundary < need or later < need:
        raise InputError(where, "duration", f"{arr.duration_s:,.0f} s is too short to split: the choose part "
                                            f"({boundary:,.0f} s) and the report part ({later:,.0f} s, "
                                            f"--choose-share {share:g}) need {need:,.0f} s each")
    slices: list[Slice] = []
    for part, (a, b) in zip(PARTS, ((0.0, boundary), (boundary, arr.duration_s)), strict=True):
        edges = _edges(a, b, slice_s, step_s)
        for k, (s0, s1) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            sim0 = max(0.0, s0 - lead_s)
            scored = s0 - sim0 if s0 > 0 else min(warmup_s, (s1 - s0) / 2)
            scored = math.ceil(scored / step_s - 1e-9) * step_s
            slices.append(Slice(part, k, s0, s1, _window(arr, sim0, s1, f"{where}[{sim0:g}:{s1:g}s]"), scored))
    return Split(_window(arr, 0.0, boundary, f"{where}[0:{boundary:g}s]"),
                 _window(arr, boundary, arr.duration_s, f"{where}[{boundary:g}:{arr.duration_s:g}s]"),
                 boundary, tuple(slices))
