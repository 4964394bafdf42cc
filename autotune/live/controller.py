"""The control loop: sample metrics, every interval observe → step → act → log.

Observing is :class:`~autotune.live.observer.LiveObserver`'s; deciding and
guarding is :func:`autotune.core.step`, the same call the simulator and the gym
env make; acting is the actuator's. Time and sleep are injected, and every
cluster touch goes through the ``fetch_state``/``scrape``/``actuator``
callables, so the loop's logic is unit-tested without waiting and without a
cluster. Any failure of one step
is logged and the loop keeps the last applied state: it never crashes on an
unreachable endpoint, a bad answer or a failing policy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autotune.core import LIVE_GUARDS, GuardConfig, Guards, LoopState, step
from autotune.core.types import Decision, Observation, Policy, PolicyState, PoolObs
from autotune.live import promtext as pt
from autotune.live.actuator import Actuator, DryRun
from autotune.live.champion import ChampionChallenger
from autotune.live.observer import FAILURES, LiveObserver, Unobserved
from autotune.live.own_metrics import ControllerMetrics
from autotune.live.reoptimize import Reoptimizer
from autotune.live.saved_state import Saved, save_state
from autotune.live.serve_state import AppState
from autotune.scenario import Scenario


@dataclass(frozen=True)
class ControllerConfig:
    app: str
    interval_s: float
    sample_s: float  # gauges are averaged over samples this far apart within an interval
    dry_run: bool = False
    guards: GuardConfig = LIVE_GUARDS


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf become null (json.dumps would write invalid NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def obs_record(obs: Observation) -> dict[str, Any]:
    return {
        "arrivals": obs.arrivals, "rate": round(obs.arrival_rate, 3), "completed": obs.completed,
        "dropped": obs.dropped, "timed_out": obs.timed_out, "p50_ms": obs.p50_ms, "p99_ms": obs.p99_ms,
        "slo_attainment": obs.slo_attainment,
        "pools": {p.name: {"running": p.running, "starting": p.starting, "pending": p.pending,
                           "draining": p.draining, "batch_size": p.batch_size,
                           "ongoing": p.ongoing_requests, "queued": p.queued_requests,
                           "preemptions": p.preemptions, "unplaceable": p.unplaceable,
                           "max_queued": p.max_queued} for p in obs.pools},
    }


class Controller:
    def __init__(self, cfg: ControllerConfig, scenario: Scenario, policy: Policy,
                 fetch_state: Callable[[], AppState | None], scrape: Callable[[], pt.Scrape],
                 actuator: Actuator, log: Callable[[dict[str, Any]], None],
                 metrics: ControllerMetrics | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 state_path: Path | None = None, resumed: Saved | None = None,
                 observer: LiveObserver | None = None, reoptimizer: Reoptimizer | None = None,
                 challenge: ChampionChallenger | None = None) -> None:
        self.cfg = cfg
        self.scenario = scenario
        self.policy = policy
        self.actuator = DryRun() if cfg.dry_run else actuator
        self.log = log
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.observer = observer or LiveObserver(scenario, cfg.app, fetch_state, scrape,
                                                 placement_grace_s=cfg.guards.placement_grace_s)
        self.guards = Guards(tuple(scenario.pools), cfg.guards)
        self.loop = LoopState(resumed.state if resumed else policy.initial_state())
        self.state_path = state_path
        self.start = clock()
        # Policy time goes on from a resumed state's last decision (states may hold times: Ray's look-back).
        self.time_offset = resumed.t if resumed else 0.0
        self.last_decision_t = self.start
        self.prices = {r.name: r.price_per_hour for r in scenario.runtime_pools()}
        # What we last applied: kept (not re-derived) while the cluster is unreachable.
        self.applied: Decision | None = None
        self.reoptimizer = reoptimizer
        self.challenge = challenge
        self.decisions = 0  # control steps that saw the app (a held step counts; an unobserved one does not)

    @property
    def policy_state(self) -> PolicyState:
        return self.loop.policy

    def _error(self, cause: str, err: Exception | str) -> dict[str, Any]:
        if self.metrics:
            self.metrics.errors.labels(cause).inc()
        return {"cause": cause, "error": str(err)}

    def take_sample(self) -> None:
        t = self.clock()
        _, err = self.observer.take_sample(t)
        if err is not None:
            self.log({"event": "error", "time": _iso(t), **self._error("metrics", err)})

    def decide(self) -> dict[str, Any]:
        """One control step at the end of a window; returns the logged record."""
        now = self.clock()
        window_s = max(now - self.last_decision_t, 1e-9)
        rec: dict[str, Any] = {"event": "decision", "time": _iso(now), "t": round(now - self.start, 3),
                               "policy": self.policy.name, "dry_run": self.cfg.dry_run, "errors": []}
        self.last_decision_t = now
        seen = self.observer.observe(now, now - self.start + self.time_offset, window_s)
        if isinstance(seen, Unobserved):
            rec["errors"].append(self._error(seen.cause, seen.error))
            rec["reason"] = seen.reason
            self._emit(rec)
            return rec
        obs = seen.obs
        self.decisions += 1
        done, after = step(self.policy, obs, self.loop, self.guards, catch=True)
        if done.error is not None:
            rec["errors"].append(self._error("policy", done.error))
        # The policy's state moves on whatever the actuator does; the guards' memory of changes only once
        # a change is made (a dry run changes nothing, so it never waits out a cooldown).
        self.loop = LoopState(after.policy, self.loop.last_change_s)
        if not done.held:
            self._save(now, obs.time_s, rec)
        rec.update(observation=obs_record(obs), reason=done.decision.reason,
                   decision=_decision_record(done.decision), applied=_decision_record(done.applied),
                   guards=list(done.notes) + list(seen.notes))
        try:
            rec["actions"] = self.actuator.apply(done.applied, seen.state)
        except FAILURES as e:
            rec["errors"].append(self._error("act", e))
            rec["actions"] = []
        else:
            if not self.cfg.dry_run:
                self.loop = after
                self.applied = done.applied
                if self.metrics:
                    for a in rec["actions"]:
                        kind, _, rest = a.partition(" ")
                        self.metrics.actions.labels(rest.split(":")[0], kind).inc()
        if self.metrics:
            batch = {p.name: p.batch_size for p in obs.pools}
            batch.update(done.applied.batch_size)
            self.metrics.record(self.policy.name, obs, done.applied, batch, self.prices, bool(done.notes))
        self._emit(rec)
        self._improve(obs, window_s, now)
        return rec

    def _improve(self, obs: Observation, window_s: float, now: float) -> None:
        """Record the traffic, collect a finished optimizer run's offer, start the next run, step the shadow:
        each a poll or a policy call, never a wait (the optimizer runs in its own process)."""
        if self.reoptimizer is not None:
            ro = self.reoptimizer
            ro.record.add(now - self.start, window_s, obs.arrivals)
            offer, failed = ro.poll()
            if failed is not None:
                self._emit({"time": _iso(now), **failed})
            if offer is not None and self.challenge is not None:
                got = self.challenge.propose(offer, now)
                if self.metrics:
                    self.metrics.offers.labels(str(bool(got["accepted"])).lower()).inc()
                self._emit({"time": _iso(now), **got})
            if ro.due(now):
                ro.champion = self.challenge.spec if self.challenge is not None else ro.champion
                self._emit({"time": _iso(now), **ro.start(now)})
        if self.challenge is None:
            return
        records, switch = self.challenge.observe(obs, self.loop, self.guards, now)
        for r in records:
            self._emit({"time": _iso(now), **r})
            if self.metrics and r["event"] == "promotion":
                self.metrics.promotions.inc()
            if self.metrics and r["event"] == "rollback":
                self.metrics.rollbacks.inc()
        if switch is not None:
            self.policy, self.loop = switch

    def _save(self, now: float, t: float, rec: dict[str, Any]) -> None:
        """Keep the policy state on disk (``--state``); a failed write is logged, and the loop goes on."""
        if self.state_path is None:
            return
        try:
            save_state(self.state_path, self.policy.name, self.scenario.name, now, t, self.loop.policy)
        except (OSError, TypeError, ValueError) as e:
            rec["errors"].append(self._error("state", f"{self.state_path}: {e}"))

    def _emit(self, rec: dict[str, Any]) -> None:
        self.log(_clean(rec))

    def stopped(self, why: str) -> dict[str, Any]:
        """Log the stop: why, how many steps saw the app, and the state last applied (None: nothing was)."""
        now = self.clock()
        rec = {"event": "stop", "time": _iso(now), "t": round(now - self.start, 3), "why": why,
               "policy": self.policy.name, "decisions": self.decisions, "dry_run": self.cfg.dry_run,
               "applied": _decision_record(self.applied) if self.applied is not None else None}
        self._emit(rec)
        return rec

    def run(self, duration_s: float | None = None, stop: Callable[[], bool] = lambda: False) -> None:
        """Sample every ``sample_s``; decide every ``interval_s``; until ``duration_s`` or ``stop()``."""
        self.take_sample()
        next_decision = self.start + self.cfg.interval_s
        while not stop():
            now = self.clock()
            if duration_s is not None and now - self.start >= duration_s:
                return
            wake = min(now + self.cfg.sample_s, next_decision)
            self.sleep(max(0.0, wake - now))
            self.take_sample()
            if self.clock() >= next_decision - 1e-6:
                self.decide()
                next_decision += self.cfg.interval_s
                # Fell behind (a long outage): realign rather than firing a burst of decisions.
                if next_decision < self.clock():
                    next_decision = self.clock() + self.cfg.interval_s


def probe_policy(policy: Policy, scenario: Scenario) -> None:
    """Ask the policy once on a quiet cluster at its initial fleet, so that a policy
    that cannot decide for this scenario (say a trained policy whose inputs do not
    match its pools) fails at start-up instead of holding at every interval.
    Raises InputError."""
    from autotune.errors import InputError

    pools = tuple(PoolObs(p.name, running=p.initial, starting=0, pending=0, draining=0, batch_size=p.batch_size,
                          ongoing_requests=0.0) for p in scenario.pools)
    obs = Observation(time_s=0.0, window_s=scenario.control_interval_s, arrivals=0, completed=0, dropped=0,
                      p50_ms=0.0, p95_ms=0.0, p99_ms=0.0, slo_attainment=1.0, queued_requests=0, pools=pools)
    try:
        policy.decide(obs, policy.initial_state())
    except Exception as e:  # noqa: BLE001 - any failure here is the policy's unfitness for the scenario
        raise InputError("command line", "--policy",
                         f"{policy.name} cannot decide for scenario {scenario.name}: {e}") from None


def _decision_record(d: Decision) -> dict[str, Any]:
    rec: dict[str, Any] = {"replicas": dict(d.replicas), "batch_size": dict(d.batch_size)}
    if d.max_queued:
        rec["max_queued"] = dict(d.max_queued)
    return rec


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")
