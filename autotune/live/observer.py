"""What the live controller sees each interval: the cluster's state and scrapes → one :class:`Observation`.

:class:`LiveObserver` keeps what observing needs across intervals: the metric
samples of the open window, the replicas Serve has reported dead (to tell
deaths from the stops of a scale-down), and since when each replica has been
waiting for a node (to tell an unplaceable replica from one whose node is
still being provisioned).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from autotune.core.types import Observation
from autotune.live import promtext as pt
from autotune.live.http import RequestRejected, Unreachable
from autotune.live.observe import Sample, build_observation
from autotune.live.serve_state import AppState
from autotune.scenario import Scenario

FAILURES = (Unreachable, RequestRejected)


@dataclass(frozen=True)
class Observed:
    """One interval's observation, the app state it was built from, and what the observer noticed."""

    obs: Observation
    state: AppState
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unobserved:
    """Why there is no observation this interval (the loop holds what it last applied)."""

    cause: str  # "dashboard" or "app"
    error: str
    reason: str


@dataclass
class LiveObserver:
    scenario: Scenario
    app: str
    fetch_state: Callable[[], AppState | None]
    scrape: Callable[[], pt.Scrape]
    placement_grace_s: float = 60.0
    samples: list[Sample] = field(default_factory=list)
    seen_dead: dict[str, set[str]] = field(default_factory=dict)
    prev_live: dict[str, int] = field(default_factory=dict)
    pending_since: dict[str, dict[str, float]] = field(default_factory=dict)

    def take_sample(self, t: float) -> tuple[Sample, Exception | None]:
        try:
            s, err = Sample(t, self.scrape()), None
        except FAILURES as e:
            s, err = Sample(t, None), e
        self.samples.append(s)
        return s, err

    def observe(self, now: float, time_s: float, window_s: float) -> Observed | Unobserved:
        """Close the window at controller time ``now``; ``time_s`` is the policy's clock."""
        window, self.samples = self.samples, self.samples[-1:]
        try:
            state = self.fetch_state()
        except FAILURES as e:
            return Unobserved("dashboard", str(e), "dashboard unreachable: holding the last applied state")
        if state is None:
            return Unobserved("app", f"application {self.app!r} not found",
                              f"application {self.app!r} not deployed: waiting for it")
        preempted, died = self._preemptions(state)
        obs = build_observation(self.scenario, self.app, state, window, time_s, window_s, preempted,
                                self._unplaceable(state, now))
        return Observed(obs, state, tuple(died))

    def _unplaceable(self, state: AppState, now: float) -> dict[str, int]:
        """Per pool, replicas no node has taken for longer than the pool's start-up and the grace period."""
        out = {}
        for p in self.scenario.runtime_pools():
            d = state.deployments.get(p.name)
            ids = set(d.pending_ids) if d else set()
            since = {rid: t for rid, t in self.pending_since.get(p.name, {}).items() if rid in ids}
            since.update({rid: now for rid in ids - set(since)})
            self.pending_since[p.name] = since
            limit = p.provision_s + p.load_s + self.placement_grace_s
            out[p.name] = sum(1 for t in since.values() if now - t > limit)
        return out

    def _preemptions(self, state: AppState) -> tuple[dict[str, int], list[str]]:
        """Replicas that died since the last look (Serve replaces them; we note and count them).

        Serve's ``recent_dead_replicas`` lists every stopped replica, also those a
        scale-down stopped on purpose; as many stops as the target fell below the
        replicas alive at the last look are that, not deaths (counted as deaths,
        they would feed a policy a preemption signal on every scale-down).
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
