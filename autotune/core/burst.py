"""How bursty a window's arrivals were below the control window: the index of dispersion of counts per slot.

SLO capacity is measured under Poisson arrivals, whose counts per slot have variance equal to their mean
(index of dispersion D = 1). Requests that come in clumps (an LLM frontend releasing a conversation's turns
together) or in sub-second spikes give D well above 1, and a fleet sized for the mean rate misses them.
For clumps D does not depend on the slot (it is E[S^2] / E[S] of the clump size S whatever the slot), so
the live controller, whose counters are sampled every couple of seconds, sees the clumps the simulator sees
in 100 ms slots; rate swings within the window add to D in longer slots.

Two numbers size a fleet (:func:`shape`): D in the finest slot (clumping: capacity is measured under clumps
of that dispersion) and, where a 1 s slot is reported too, the swing of the per-second rate that D's growth
from the finest slot to 1 s implies (for a rate that swings slower than a slot, D_slot = D_clump + rate x
slot x cv^2, cv the per-second rate's coefficient of variation). The simulator reports D for ``SLOTS_S``; the
live controller for its sample interval alone, so live, swings within a sample count as clumps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

SLOTS_S = (0.1, 1.0)
MIN_SLOTS = 5  # fewer slots than this say nothing about dispersion
Dispersion = tuple[tuple[float, float], ...]  # (slot seconds, index of dispersion), finest first


def index_of_dispersion(counts: np.ndarray) -> float | None:
    """Variance over mean of ``counts`` (None when there are too few slots or no arrivals).

    The variance is estimated from successive differences (half their mean square), the largest one left
    out: a load that steps up within the window (an MMPP burst starting) is not burstiness below the window,
    and with the plain variance a 3x step in ten 1 s slots reads as D = 137 where the differences give 1.1.
    """
    if counts.size < MIN_SLOTS:
        return None
    mean = float(counts.mean())
    if mean <= 0:
        return None
    sq = np.sort(np.diff(counts.astype(float)) ** 2)[:-1]
    return float(sq.mean()) / 2.0 / mean


def of_times(times: np.ndarray, t0: float, t1: float, slots: Sequence[float] = SLOTS_S) -> Dispersion:
    """D of the arrivals at ``times`` (within [t0, t1)) for each slot length that fits the window."""
    out = []
    for slot in slots:
        n = int(math.floor((t1 - t0) / slot + 1e-9))
        if n < MIN_SLOTS:
            continue
        k = ((times - t0) // slot).astype(np.int64)
        d = index_of_dispersion(np.bincount(k[(k >= 0) & (k < n)], minlength=n))
        if d is not None:
            out.append((float(slot), d))
    return tuple(out)


def of_counts(counts: Sequence[float], slot_s: float) -> Dispersion:
    """D of arrival counts sampled every ``slot_s`` (the live controller's counters)."""
    d = index_of_dispersion(np.asarray(counts, dtype=float))
    return () if d is None or not math.isfinite(d) else ((float(slot_s), d),)


def swing(dispersion: Dispersion, rate: float) -> float:
    """The per-second rate's coefficient of variation implied by D at the finest slot and at 1 s (0 if one
    of them is missing or the rate is 0)."""
    got = dict(dispersion)
    if 1.0 not in got or len(got) < 2 or rate <= 0:
        return 0.0
    fine = min(got)
    return math.sqrt(max(0.0, got[1.0] - got[fine]) / (rate * (1.0 - fine)))


def bucket_swing(cv: float) -> float:
    """0 below 0.3 (the noise of ten 1 s slots a window, smoothed), else 0.4, 0.8 or 1.6, the nearest in log."""
    if not cv >= 0.3:
        return 0.0
    return 0.4 * 2 ** min(2, max(0, round(math.log2(cv / 0.4))))


def shape(dispersion: Dispersion, rate: float) -> tuple[float, float]:
    """(clumping D, per-second swing cv): the finest slot's D less what the swing adds to it in that slot."""
    cv = swing(dispersion, rate)
    if not dispersion:
        return 1.0, cv
    fine, d = min(dispersion)
    return max(1.0, d - rate * fine * cv**2), cv


def finest(dispersion: Dispersion) -> float:
    """D in the shortest slot reported, 1 (Poisson) when nothing is."""
    return min(dispersion)[1] if dispersion else 1.0


def smoothed(history: Sequence[float]) -> float:
    """The median of the recent windows' D: one window's estimate is noisy (about +-0.15 at 30 req/s)."""
    return float(np.median(history)) if len(history) else 1.0


def bucket(d: float) -> float:
    """The dispersion capacity is measured at: 1 below 1.5 (Poisson noise), else the nearest power of 2 up to 64.

    Few buckets keep the capacity measurements few; a power of 2 is within 1.41x of any D."""
    if not d >= 1.5:
        return 1.0
    return float(2 ** min(6, round(math.log2(d))))
