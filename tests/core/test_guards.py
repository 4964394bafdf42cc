"""The guards: each a pure function with a note of what it changed."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from autotune.core.guards import (
    GuardConfig,
    cooldown,
    guard,
    hold_on_missing_data,
    limit_step,
    no_scale_down_while_starting,
    no_scale_up_while_unplaceable,
    step_limits,
)
from autotune.core.types import Decision, Observation, PoolObs
from autotune.scenario import load_scenario


def _obs(ongoing: float = 4.0, starting: int = 0, pending: int = 0, running: int = 3, unplaceable: int = 0,
         t: float = 10.0) -> Observation:
    pool = PoolObs("l4", running=running, starting=starting, pending=pending, draining=0, batch_size=4,
                   ongoing_requests=ongoing, unplaceable=unplaceable)
    return Observation(t, 5.0, 50, 50, 0, 100.0, 200.0, 300.0, 1.0, 0, (pool,))


def _d(n: int, batch: dict[str, int] | None = None) -> Decision:
    return Decision({"l4": n}, "test", batch or {})


def test_missing_data_never_scales_down_but_may_scale_up() -> None:
    nan = _obs(ongoing=math.nan)
    g = hold_on_missing_data(_d(1), nan, {"l4": 3})
    assert g.decision.replicas == {"l4": 3} and "missing" in g.notes[0]
    assert hold_on_missing_data(_d(5), nan, {"l4": 3}).decision.replicas == {"l4": 5}
    assert hold_on_missing_data(_d(1), _obs(), {"l4": 3}).notes == ()


def test_no_scale_down_while_starting() -> None:
    g = no_scale_down_while_starting(_d(2), _obs(starting=1), {"l4": 4})
    assert g.decision.replicas == {"l4": 4} and "starting" in g.notes[0]
    assert no_scale_down_while_starting(_d(6), _obs(starting=1), {"l4": 4}).decision.replicas == {"l4": 6}


def test_pending_replicas_whose_node_is_coming_do_not_block_a_scale_up_unplaceable_ones_do() -> None:
    assert no_scale_up_while_unplaceable(_d(8), _obs(pending=4), {"l4": 5}).decision.replicas == {"l4": 8}
    g = no_scale_up_while_unplaceable(_d(8), _obs(pending=4, unplaceable=2), {"l4": 5})
    assert g.decision.replicas == {"l4": 5} and "unplaceable" in g.notes[0]
    assert no_scale_up_while_unplaceable(_d(3), _obs(pending=2, unplaceable=2), {"l4": 5}).decision.replicas == {
        "l4": 3}


def test_cooldown_counts_from_the_pools_last_change() -> None:
    cfg = GuardConfig(up_cooldown_s=0.0, down_cooldown_s=30.0)
    last = {"l4": 100.0}
    assert cooldown(_d(3), {"l4": 4}, 110.0, last, cfg).decision.replicas == {"l4": 4}
    assert cooldown(_d(3), {"l4": 4}, 130.0, last, cfg).decision.replicas == {"l4": 3}
    assert cooldown(_d(6), {"l4": 4}, 101.0, last, cfg).decision.replicas == {"l4": 6}
    assert cooldown(_d(3), {"l4": 4}, 101.0, {}, cfg).decision.replicas == {"l4": 3}  # never changed: no wait


def test_step_limits_are_a_count_or_a_fraction_of_the_target_whichever_is_more() -> None:
    cfg = GuardConfig(max_step_up=4, max_step_up_ratio=1.0, max_step_down=1, max_step_down_ratio=0.2)
    assert step_limits(2, cfg) == (4, 1)  # small fleets: the counts
    assert step_limits(10, cfg) == (10, 2)  # larger ones: double, or a fifth off
    assert limit_step(_d(30), {"l4": 10}, cfg).decision.replicas == {"l4": 20}
    g = limit_step(_d(1), {"l4": 10}, cfg)
    assert g.decision.replicas == {"l4": 8} and "max step +10/-2" in g.notes[0]
    fixed = GuardConfig(max_step_up=2, max_step_up_ratio=0.0, max_step_down=1, max_step_down_ratio=0.0)
    assert limit_step(_d(9), {"l4": 4}, fixed).decision.replicas == {"l4": 6}
    assert limit_step(_d(1), {"l4": 4}, fixed).decision.replicas == {"l4": 3}


def test_guard_chain_ends_within_bounds_and_reports_every_change() -> None:
    sc = load_scenario("live-demo")  # l4: 1..8, batch sizes 1, 2, 4, 8
    g = guard(_d(50, {"l4": 5}), _obs(), {"l4": 3}, sc.pools, {}, GuardConfig(max_step_up=10))
    assert g.decision.replicas == {"l4": 8} and g.decision.batch_size == {"l4": 4}
    assert any("bounds" in n for n in g.notes) and any("batch" in n for n in g.notes)
    g = guard(_d(0), _obs(ongoing=math.nan), {"l4": 3}, sc.pools, {}, GuardConfig())
    assert g.decision.replicas == {"l4": 3}
    fixed = guard(_d(2), _obs(ongoing=math.nan), {"l4": 3}, sc.pools, {}, GuardConfig(), reads_metrics=False)
    assert fixed.decision.replicas == {"l4": 2}  # a static fleet is not blind without metrics
    assert guard(_d(2), _obs(starting=1), {"l4": 3}, sc.pools, {}, GuardConfig()).decision.replicas == {"l4": 2}
    held = guard(_d(2), _obs(starting=1), {"l4": 3}, sc.pools, {}, GuardConfig(hold_while_starting=True))
    assert held.decision.replicas == {"l4": 3}
    bounds = guard(_d(50), _obs(ongoing=math.nan), {"l4": 3}, sc.pools, {}, None)  # None: bounds alone
    assert bounds.decision.replicas == {"l4": 8} and len(bounds.notes) == 1


def test_a_bad_limit_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="max_step_down_ratio"):
        GuardConfig(max_step_down_ratio=1.5)
    with pytest.raises(ValidationError, match="max_step_up"):
        GuardConfig(max_step_up=0)


def test_queue_caps_pass_through_the_guards_bounded_as_serve_takes_them() -> None:
    pools = load_scenario("default").pools
    d = Decision({"l4": 3}, "test", {}, {"l4": 40, "nope": 5})
    g = guard(d, _obs(), {"l4": 3}, pools, {}, GuardConfig())
    assert g.decision.max_queued == {"l4": 40} and g.notes == ()
    for want, got in ((-7, -1), (0, 1), (-1, -1), (1, 1)):
        g = guard(Decision({"l4": 3}, "test", {}, {"l4": want}), _obs(), {"l4": 3}, pools, {}, GuardConfig())
        assert g.decision.max_queued == {"l4": got}
        assert any("max_queued" in n for n in g.notes) == (want != got)
    # A replica change the guards hold back does not hold back the cap with it.
    held = guard(Decision({"l4": 9}, "test", {}, {"l4": 12}), _obs(), {"l4": 3}, pools, {"l4": 5.0},
                 GuardConfig(up_cooldown_s=60.0))
    assert held.decision.replicas == {"l4": 3} and held.decision.max_queued == {"l4": 12}
    assert guard(_d(3), _obs(), {"l4": 3}, pools, {}, None).decision.max_queued == {}
