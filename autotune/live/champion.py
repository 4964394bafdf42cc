"""Champion and challenger: a policy chosen on the cluster's recent traffic replaces the running one only on evidence.

The controller's policy is the *champion*. An optimizer run (``autotune optimize`` in its own process, see
:mod:`autotune.live.reoptimize`; never inside the control loop) proposes a *challenger* with its simulated
cost and SLO on the recent traffic beside the champion's. The challenger then goes through three gates:

1. **wins in simulation**: it keeps the SLO target and costs at least ``margin`` less than the champion on
   the same recorded traffic;
2. **shadow**: for ``shadow_s`` it decides on every live observation beside the champion, its decisions are
   logged and guarded against the live fleet but never applied; it is promoted only if no guard would have
   had to clip it (bounds or step limits: a policy that asks for what the guards refuse is not trusted with
   the cluster), and it never failed;
3. **watch**: once promoted, the former champion keeps deciding in shadow, so its state is current; if the
   SLO attainment over the next ``watch_s`` falls more than ``tolerance`` below what the former champion
   kept over the ``watch_s`` before the promotion (and below the target), the former champion comes back.

Every offer, rejection, promotion and rollback is one log record carrying its evidence; the controller
counts promotions and rollbacks in its own metrics. Everything here is a pure function of what it is given
(times come in as arguments), so the gates are unit-tested without a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autotune.core import Guards, LoopState, step
from autotune.core.types import Observation, Policy

# Guard notes that say the policy asked for more than the cluster allows; holds on missing metrics or
# cooldowns after the champion's own changes are the live loop's circumstances, not the challenger's fault.
BREACH_MARKS = ("(bounds ", "(allowed ", "(max step ")


@dataclass(frozen=True)
class ChallengeConfig:
    every_s: float  # how often an optimizer run starts on the recent traffic (--optimize-every)
    shadow_s: float = 600.0  # how long a challenger decides beside the champion before it may act
    margin: float = 0.05  # the simulated saving a challenger must show over the champion
    watch_s: float = 900.0  # after a promotion, how long the SLO is watched for a regression
    tolerance: float = 0.005  # the SLO attainment drop (fraction of requests) that rolls back


@dataclass(frozen=True)
class Offer:
    """What an optimizer run proposes: the challenger, and both policies' figures on the same traffic."""

    policy: str  # a policy spec or a zip path, as --policy takes it
    cost_usd: float
    slo: float
    champion_cost_usd: float
    champion_slo: float
    target: float
    source: str  # where the evidence is (the optimizer's report)
    against: str = ""  # the champion the run compared with (its spec); another champion makes the offer stale

    def evidence(self) -> dict[str, Any]:
        return {"challenger": self.policy, "sim_cost_usd": self.cost_usd, "sim_slo": self.slo,
                "champion_sim_cost_usd": self.champion_cost_usd, "champion_sim_slo": self.champion_slo,
                "target": self.target, "report": self.source}


def wins(offer: Offer, champion: str, margin: float) -> tuple[bool, str]:
    """Gate 1: does the challenger keep the target and save ``margin`` over the champion in simulation?"""
    if offer.policy == champion:
        return False, "the optimizer chose the running policy"
    if not (math.isfinite(offer.slo) and math.isfinite(offer.cost_usd)):
        return False, "the offer's figures are not numbers"
    if offer.slo < offer.target:
        return False, f"simulated SLO {offer.slo:.2%} under the {offer.target:.1%} target"
    if offer.slo < min(offer.champion_slo, offer.target):
        return False, f"simulated SLO {offer.slo:.2%} under the champion's {offer.champion_slo:.2%}"
    if offer.champion_slo >= offer.target and offer.cost_usd > (1 - margin) * offer.champion_cost_usd:
        return False, (f"simulated ${offer.cost_usd:.2f} against the champion's ${offer.champion_cost_usd:.2f}: "
                       f"less than the {margin:.0%} margin")
    saving = 1 - offer.cost_usd / offer.champion_cost_usd if offer.champion_cost_usd > 0 else 0.0
    return True, (f"simulated ${offer.cost_usd:.2f} at {offer.slo:.2%} against the champion's "
                  f"${offer.champion_cost_usd:.2f} at {offer.champion_slo:.2%} ({saving:.0%} less)")


def breaches(notes: tuple[str, ...]) -> list[str]:
    return [n for n in notes if any(m in n for m in BREACH_MARKS)]


@dataclass
class Shadow:
    """A policy deciding on the live observations without acting: its state moves, its decisions are logged."""

    policy: Policy
    spec: str
    state: LoopState
    since: float
    decisions: int = 0
    breached: list[str] = field(default_factory=list)
    failures: int = 0

    def step(self, obs: Observation, guards: Guards) -> dict[str, Any]:
        done, after = step(self.policy, obs, self.state, guards, catch=True)
        self.decisions += 1
        if done.error is not None:
            self.failures += 1
        elif not done.held:
            self.breached.extend(breaches(done.notes))
        # Its guards' memory of changes never moves: it changes nothing, so it never waits out a cooldown.
        self.state = LoopState(after.policy, self.state.last_change_s)
        return {"policy": self.policy.name, "replicas": dict(done.decision.replicas),
                "batch_size": dict(done.decision.batch_size), "reason": done.decision.reason,
                "would_breach": breaches(done.notes), "error": done.error}


def attainment(windows: list[tuple[float, int, float]], t0: float, t1: float) -> float | None:
    """Requests on time over requests completed, over the windows ending in (t0, t1]."""
    n = sum(c for t, c, _ in windows if t0 < t <= t1)
    if n <= 0:
        return None
    return sum(c * s for t, c, s in windows if t0 < t <= t1) / n


@dataclass
class ChampionChallenger:
    """The gates around one controller's policy; see the module's docstring. ``make`` builds a policy from an
    offer's spec (registry.make_policy for the scenario)."""

    cfg: ChallengeConfig
    champion: Policy
    spec: str  # the champion's spec, as --policy and the optimizer's --candidate take it
    make: Callable[[str], Policy]
    challenger: Shadow | None = None
    former: Shadow | None = None  # the champion before the last promotion, while it is watched
    offer_in_shadow: Offer | None = None
    promoted_at: float | None = None
    windows: list[tuple[float, int, float]] = field(default_factory=list)  # (end, completed, SLO attainment)
    promotions: int = 0
    rollbacks: int = 0
    target: float = 1.0  # the SLO target a regression is judged against (the scenario's)

    def propose(self, offer: Offer, now: float) -> dict[str, Any]:
        """Gate 1, and the start of the shadow for an offer that passes it."""
        rec: dict[str, Any] = {"event": "offer", "champion": self.spec, **offer.evidence()}
        if self.former is not None:
            rec.update(accepted=False, why="the last promotion is still being watched")
            return rec
        if offer.against and offer.against != self.spec:
            rec.update(accepted=False, why=f"compared with {offer.against}, which no longer runs")
            return rec
        ok, why = wins(offer, self.spec, self.cfg.margin)
        if ok:
            try:
                pol = self.make(offer.policy)
            except Exception as e:  # noqa: BLE001 - an unbuildable challenger is rejected, the champion runs on
                ok, why = False, f"cannot build {offer.policy}: {e}"
            else:
                self.challenger = Shadow(pol, offer.policy, LoopState(pol.initial_state()), now)
                self.offer_in_shadow = offer
        rec.update(accepted=ok, why=why)
        return rec

    def observe(self, obs: Observation, champion_state: LoopState, guards: Guards, now: float
                ) -> tuple[list[dict[str, Any]], tuple[Policy, LoopState] | None]:
        """After the champion's step on ``obs``: step the shadow, then maybe promote or roll back.

        Returns the records to log and, when the running policy changes, the new one with its state (the
        shadow's state, current because it decided on every observation)."""
        if math.isfinite(obs.slo_attainment):
            self.windows.append((now, obs.completed, obs.slo_attainment))
        horizon = now - 2 * max(self.cfg.watch_s, self.cfg.shadow_s)
        self.windows = [w for w in self.windows if w[0] > horizon]
        if self.challenger is not None:
            rec = {"event": "shadow", "champion": self.spec, **self.challenger.step(obs, guards)}
            if now - self.challenger.since < self.cfg.shadow_s:
                return [rec], None
            verdict, switch = self._end_shadow(champion_state, now)
            return [rec, verdict], switch
        if self.former is not None and self.promoted_at is not None:
            self.former.step(obs, guards)
            if now - self.promoted_at >= self.cfg.watch_s:
                verdict, switch = self._end_watch(champion_state, now)
                return [verdict], switch
        return [], None

    def _end_shadow(self, champion_state: LoopState, now: float
                    ) -> tuple[dict[str, Any], tuple[Policy, LoopState] | None]:
        sh, offer = self.challenger, self.offer_in_shadow
        assert sh is not None and offer is not None
        self.challenger, self.offer_in_shadow = None, None
        evidence = {**offer.evidence(), "shadow_s": round(now - sh.since, 1), "shadow_decisions": sh.decisions,
                    "would_breach": sh.breached[:5], "breaches": len(sh.breached), "failures": sh.failures}
        if sh.breached or sh.failures or sh.decisions == 0:
            why = ("no decision in the shadow period" if sh.decisions == 0 else
                   f"{len(sh.breached)} decisions the guards would have clipped" if sh.breached else
                   f"failed {sh.failures} times")
            return {"event": "rejected", "champion": self.spec, "why": why, **evidence}, None
        before = attainment(self.windows, now - self.cfg.watch_s, now)
        self.former = Shadow(self.champion, self.spec, champion_state, now)
        self.champion, self.spec, self.promoted_at = sh.policy, sh.spec, now
        self.promotions += 1
        rec = {"event": "promotion", "champion": sh.spec, "former": self.former.spec, "slo_before": before,
               **evidence}
        return rec, (sh.policy, LoopState(sh.state.policy, champion_state.last_change_s))

    def _end_watch(self, champion_state: LoopState, now: float
                   ) -> tuple[dict[str, Any], tuple[Policy, LoopState] | None]:
        former, t0 = self.former, self.promoted_at
        assert former is not None and t0 is not None
        self.former, self.promoted_at = None, None
        before = attainment(self.windows, t0 - self.cfg.watch_s, t0)
        after = attainment(self.windows, t0, now)
        rec = {"champion": self.spec, "former": former.spec, "slo_before": before,
               "slo_after": after, "watch_s": round(now - t0, 1)}
        if before is not None and after is not None and after < min(before, self.target) - self.cfg.tolerance:
            self.rollbacks += 1
            self.champion, self.spec = former.policy, former.spec
            rec = {"event": "rollback", **rec, "champion": former.spec, "rolled_back": rec["champion"],
                   "why": f"SLO {after:.2%} after the promotion, {before:.2%} before"}
            return rec, (former.policy, LoopState(former.state.policy, champion_state.last_change_s))
        return {"event": "kept", **rec}, None
