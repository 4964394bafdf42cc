"""Live guardrails: each a pure function with a note (fast)."""

from __future__ import annotations

import math

from autotune.live.guards import (
    GuardConfig,
    GuardMemory,
    cooldown,
    guard,
    hold_on_missing_data,
    limit_step,
    no_scale_down_while_starting,
    no_scale_up_while_pending,
    record_changes,
)
from autotune.policies.types import Decision, Observation, PoolObs
from autotune.scenario import load_scenario


def _obs(ongoing: float = 4.0, starting: int = 0, pending: int = 0, running: int = 3) -> Observation:
    pool = PoolObs("l4", running=running, starting=starting, pending=pending, draining=0, batch_size=4,
                   ongoing_requests=ongoing)
    return Observation(10.0, 5.0, 50, 50, 0, 100.0, 200.0, 300.0, 1.0, 0, (pool,))


def _d(n: int, batch: dict[str, int] | None = None) -> Decision:
    return Decision({"l4": n}, "test", batch or {})


def test_missing_data_never_scales_down_but_may_scale_up() -> None:
    nan = _obs(ongoing=math.nan)
    g = hold_on_missing_data(_d(1), nan, {"l4": 3})
    assert g.decision.replicas == {"l4": 3} and "missing" in g.notes[0]
    assert hold_on_missing_data(_d(5), nan, {"l4": 3}).decision.replicas == {"l4": 5}
    assert hold_on_missing_data(_d(1), _obs(), {"l4": 3}).notes == ()


def test_no_scale_down_while_starting_and_no_scale_up_while_pending() -> None:
    g = no_scale_down_while_starting(_d(2), _obs(starting=1), {"l4": 4})
    assert g.decision.replicas == {"l4": 4} and "starting" in g.notes[0]
    assert no_scale_down_while_starting(_d(6), _obs(starting=1), {"l4": 4}).decision.replicas == {"l4": 6}
    g = no_scale_up_while_pending(_d(8), _obs(pending=2), {"l4": 5})
    assert g.decision.replicas == {"l4": 5} and "pending" in g.notes[0]
    assert no_scale_up_while_pending(_d(3), _obs(pending=2), {"l4": 5}).decision.replicas == {"l4": 3}


def test_cooldown_and_step_limits() -> None:
    cfg = GuardConfig(max_step_up=2, max_step_down=1, up_cooldown_s=0.0, down_cooldown_s=30.0)
    mem = GuardMemory()
    record_changes({"l4": 2}, {"l4": 4}, 100.0, mem)
    assert cooldown(_d(3), {"l4": 4}, 110.0, mem, cfg).decision.replicas == {"l4": 4}
    assert cooldown(_d(3), {"l4": 4}, 131.0, mem, cfg).decision.replicas == {"l4": 3}
    assert cooldown(_d(6), {"l4": 4}, 101.0, mem, cfg).decision.replicas == {"l4": 6}
    assert limit_step(_d(9), {"l4": 4}, cfg).decision.replicas == {"l4": 6}
    assert limit_step(_d(1), {"l4": 4}, cfg).decision.replicas == {"l4": 3}


def test_guard_chain_ends_within_bounds_and_reports_every_change() -> None:
    sc = load_scenario("live-demo")  # l4: 1..8, batch sizes 1, 2, 4, 8
    g = guard(_d(50, {"l4": 5}), _obs(), {"l4": 3}, sc.pools, 0.0, GuardMemory(), GuardConfig(max_step_up=10))
    assert g.decision.replicas == {"l4": 8} and g.decision.batch_size == {"l4": 4}
    assert any("bounds" in n for n in g.notes) and any("batch" in n for n in g.notes)
    g = guard(_d(0), _obs(ongoing=math.nan), {"l4": 3}, sc.pools, 0.0, GuardMemory(), GuardConfig())
    assert g.decision.replicas == {"l4": 3}
