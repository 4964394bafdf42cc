"""The control loop: sample metrics, every interval observe → decide → guard → act → log.

Time and sleep are injected, and every cluster touch goes through the
``fetch_state``/``scrape``/``actuator`` callables, so the loop's logic is
unit-tested without waiting and without a cluster. Any failure of one step
is logged and the loop keeps the last applied state: it never crashes on an
unreachable endpoint, a bad answer or a failing policy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autotune.live import promtext as pt
from autotune.live.actuator import Actuator, DryRun
from autotune.live.guards import GuardConfig, GuardMemory, guard, record_changes
from autotune.live.http import RequestRejected, Unreachable
from autotune.live.observe import Sample, build_observation
from autotune.live.own_metrics import ControllerMetrics
from autotune.live.saved_state import Saved, save_state
from autotune.live.serve_state import AppState
from autotune.policies.static import StaticPolicy
from autotune.policies.types import Decision, Observation, Policy, PoolObs
from autotune.scenario import Scenario

FAILURES = (Unreachable, RequestRejected)


@dataclass(frozen=True)
class ControllerConfig:
    app: str
    interval_s: float
    sample_s: float  # gauges are averaged over samples this far apart within an interval
    dry_run: bool = False
    guards: GuardConfig = field(default_factory=GuardConfig)


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
        "dropped": obs.dropped, "p50_ms": obs.p50_ms, "p99_ms": obs.p99_ms, "slo_attainment": obs.slo_attainment,
        "pools": {p.name: {"running": p.running, "starting": p.starting, "pending": p.pending,
                           "draining": p.draining, "batch_size": p.batch_size,
                           "ongoing": p.ongoing_requests, "queued": p.queued_requests,
                           "preemptions": p.preemptions} for p in obs.pools},
    }


class Controller:
    def __init__(self, cfg: ControllerConfig, scenario: Scenario, policy: Policy,
                 fetch_state: Callable[[], AppState | None], scrape: Callable[[], pt.Scrape],
                 actuator: Actuator, log: Callable[[dict[str, Any]], None],
                 metrics: ControllerMetrics | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 state_path: Path | None = None, resumed: Saved | None = None) -> None:
        self.cfg = cfg
        self.scenario = scenario
        self.policy = policy
        self.fetch_state = fetch_state
        self.scrape = scrape
        self.actuator = DryRun() if cfg.dry_run else actuator
        self.log = log
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.policy_state = resumed.state if resumed else policy.initial_state()
        self.state_path = state_path
        self.memory = GuardMemory()
        self.samples: list[Sample] = []
        self.start = clock()
        # Policy time goes on from a resumed state's last decision (states may hold times: Ray's look-back).
        self.time_offset = resumed.t if resumed else 0.0
        self.last_decision_t = self.start
        self.seen_dead: dict[str, set[str]] = {}
        self.prev_live: dict[str, int] = {}
        self.prices = {r.name: r.price_per_hour for r in scenario.runtime_pools()}
        # What we last applied: kept (not re-derived) while the cluster is unreachable.
        self.applied: Decision | None = None

    def _error(self, cause: str, err: Exception | str) -> dict[str, Any]:
        if self.metrics:
            self.metrics.errors.labels(cause).inc()
        return {"cause": cause, "error": str(err)}

    def take_sample(self) -> Sample:
        t = self.clock()
        try:
            s = Sample(t, self.scrape())
        except FAILURES as e:
            s = Sample(t, None)
            self.log({"event": "error", "time": _iso(t), **self._error("metrics", e)})
        self.samples.append(s)
        return s

    def _preemptions(self, state: AppState) -> tuple[dict[str, int], list[str]]:
        """Replicas that died since the last look (Serve replaces them; we note and count them).

        Serve's ``recent_dead_replicas`` lists every stopped replica, also those a
        scale-down stopped on purpose; as many stops as the target fell below the
        replicas alive at the last look are that, not deaths. (Counting them made a
        spot-availability feature fire on every scale-down of an on-demand pool.)
        """
        counts: dict[str, int] = {}
        notes = []
        for p in self.scenario.pools:
            d = state.deployments.get(p.name)
            if d is None:
                continue
            live = d.running + d.starting + d.pending + d.draining
            expected_stops = max(0, self.prev_live.get(p.name, live) - d.target)
            self.prev_live[p.name] = live
            seen = self.seen_dead.setdefault(p.name, set(d.dead_replicas))  # older deaths are not news
            new = set(d.dead_replicas) - seen
            seen |= new
            died = len(new) - expected_stops
            if died > 0:
                counts[p.name] = died
                notes.append(f"{p.name}: {died} replica(s) died ({', '.join(sorted(new))})")
        return counts, notes

    def _hold(self, current: dict[str, int], why: str) -> Decision:
        return Decision(dict(current), why)

    def decide(self) -> dict[str, Any]:
        """One control step at the end of a window; returns the logged record."""
        now = self.clock()
        window_s = max(now - self.last_decision_t, 1e-9)
        rec: dict[str, Any] = {"event": "decision", "time": _iso(now), "t": round(now - self.start, 3),
                               "policy": self.policy.name, "dry_run": self.cfg.dry_run, "errors": []}
        window, self.samples = self.samples, self.samples[-1:]
        self.last_decision_t = now
        try:
            state = self.fetch_state()
        except FAILURES as e:
            rec["errors"].append(self._error("dashboard", e))
            rec["reason"] = "dashboard unreachable: holding the last applied state"
            self._emit(rec)
            return rec
        if state is None:
            rec["errors"].append(self._error("app", f"application {self.cfg.app!r} not found"))
            rec["reason"] = "application not deployed: nothing to control"
            self._emit(rec)
            return rec
        preempted, died = self._preemptions(state)
        obs = build_observation(self.scenario, self.cfg.app, state, window, now - self.start + self.time_offset,
                                window_s, preempted)
        current = {p.name: state.deployments[p.name].target for p in self.scenario.pools
                   if p.name in state.deployments}
        if not obs.is_finite() and not isinstance(self.policy, StaticPolicy):
            # Rules fed NaN (or a stale zero) would scale on noise: hold instead.
            # A static fleet reads no metrics, so it is still applied.
            decision = self._hold(current, "metrics missing or stale: conservative hold")
        else:
            try:
                decision, self.policy_state = self.policy.decide(obs, self.policy_state)
            except Exception as e:  # noqa: BLE001 - a failing policy must not stop the controller
                rec["errors"].append(self._error("policy", repr(e)))
                decision = self._hold(current, "policy failed: hold")
            else:
                self._save(now, obs.time_s, rec)
        g = guard(decision, obs, current, self.scenario.pools, now, self.memory, self.cfg.guards)
        rec.update(observation=obs_record(obs), reason=decision.reason,
                   decision={"replicas": dict(decision.replicas), "batch_size": dict(decision.batch_size)},
                   applied={"replicas": dict(g.decision.replicas), "batch_size": dict(g.decision.batch_size)},
                   guards=list(g.notes) + died)
        try:
            rec["actions"] = self.actuator.apply(g.decision, state)
        except FAILURES as e:
            rec["errors"].append(self._error("act", e))
            rec["actions"] = []
        else:
            if not self.cfg.dry_run:
                record_changes(current, g.decision.replicas, now, self.memory)
                self.applied = g.decision
                if self.metrics:
                    for a in rec["actions"]:
                        kind, _, rest = a.partition(" ")
                        self.metrics.actions.labels(rest.split(":")[0], kind).inc()
        if self.metrics:
            batch = {p.name: p.batch_size for p in obs.pools}
            batch.update(g.decision.batch_size)
            self.metrics.record(self.policy.name, obs, g.decision, batch, self.prices, bool(g.notes))
        self._emit(rec)
        return rec

    def _save(self, now: float, t: float, rec: dict[str, Any]) -> None:
        """Keep the policy state on disk (``--state``); a failed write is logged, and the loop goes on."""
        if self.state_path is None:
            return
        try:
            save_state(self.state_path, self.policy.name, self.scenario.name, now, t, self.policy_state)
        except (OSError, TypeError, ValueError) as e:
            rec["errors"].append(self._error("state", f"{self.state_path}: {e}"))

    def _emit(self, rec: dict[str, Any]) -> None:
        self.log(_clean(rec))

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


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")
