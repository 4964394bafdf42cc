"""The split: the choose part before the report part, disjoint, slices covering each part in order."""

from __future__ import annotations

import numpy as np
import pytest

from autotune.errors import InputError
from autotune.optimize.split import split
from autotune.workload.arrivals import Arrivals


def _arrivals(duration: float, rate: float = 5.0) -> Arrivals:
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0.0, duration, int(duration * rate)))
    return Arrivals(t, np.zeros(t.size, dtype=np.float32), duration, "test")


def test_parts_are_disjoint_ordered_and_cover_the_traffic() -> None:
    arr = _arrivals(3600.0)
    sp = split(arr, 0.6, 900.0, 10.0, 300.0)
    assert sp.boundary_s == 2160.0
    assert len(sp.choose) + len(sp.report) == len(arr)
    assert sp.choose.duration_s + sp.report.duration_s == arr.duration_s
    # the report part is the later part: its first arrival (shifted back) comes after the choose part's last
    assert sp.choose.times.max() + 0.0 < sp.boundary_s <= sp.report.times.min() + sp.boundary_s
    for part, (a, b) in (("choose", (0.0, 2160.0)), ("report", (2160.0, 3600.0))):
        slices = sp.of(part)
        assert len(slices) > 1
        assert slices[0].start_s == a and slices[-1].end_s == b
        for s, nxt in zip(slices, slices[1:], strict=False):
            assert s.end_s == nxt.start_s  # scored spans tile the part, no overlap
        for s in slices:
            lead_start = s.end_s - s.arrivals.duration_s
            assert s.arrivals.times.min() >= 0 and s.arrivals.times.max() < s.arrivals.duration_s
            assert s.scored_from_s == pytest.approx(s.start_s - lead_start if s.start_s else 300.0)
            if part == "report":
                assert lead_start < s.start_s  # a lead-in before every report slice, none of it scored


def test_scored_requests_are_each_counted_once() -> None:
    arr = _arrivals(3000.0)
    sp = split(arr, 0.5, 600.0, 10.0, 300.0)
    scored = 0
    for s in sp.slices:
        scored += int(np.sum(s.arrivals.times >= s.scored_from_s)) if s.start_s else \
            int(np.sum(s.arrivals.times >= 0))
    assert scored == len(arr)


@pytest.mark.parametrize("duration,share", [(900.0, 0.6), (3600.0, 0.99)])
def test_too_short_to_split_is_an_input_error(duration: float, share: float) -> None:
    with pytest.raises(InputError, match="too short to split"):
        split(_arrivals(duration), share, 600.0, 10.0, 300.0)


def test_choose_share_outside_0_1_is_an_input_error() -> None:
    with pytest.raises(InputError, match="--choose-share"):
        split(_arrivals(3600.0), 1.0, 600.0, 10.0, 300.0)
