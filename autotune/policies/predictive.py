"""``predictive[:M]``: size for the load one start-up ahead, with a margin learnt from its own misses.

``headroom`` and ``burst`` hold a fixed multiple of the load. On a steady
load that is waste, and with few replicas it rounds up to a whole extra GPU
(on ``default`` 300 req/s fits two L4s, 1.2 x 300 needs three). This rule
holds what it predicts instead, and measures how wrong it tends to be:

- the prediction is a robust line through the last five minutes of window
  rates, extended over the start-up lead (the cheapest pool's node
  provisioning plus model load, 145 s on an L4): the most load the replicas
  started now will meet before others could follow;
- one lead later it knows the load that came (the busiest window of that
  lead) and records the ratio of that to what it predicted;
- it holds M x prediction x the ``QUANTILE`` of the ratios of the last half
  hour (at least 1), on the cheapest pools first (``headroom``'s spill-over).

On steady load the ratios stay within Poisson noise and the margin is a few
percent; on a rising load the trend carries it; after bursts the ratios are
as large as the bursts were, so it holds burst capacity as ``burst`` does and
forgets it the same half hour later. Until it has seen its first lead of
errors it holds ``DEFAULT_HEADROOM``. A pool that starts faster than the
cheapest (a warm node pool) is sized the same way over its own, shorter lead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autotune.core.types import Decision, Observation, PolicyState
from autotune.policies.burst import MAX_RATIO, MEMORY_S
from autotune.policies.headroom import DEFAULT_HEADROOM, HeadroomPolicy, dispersion_seen, make_headroom
from autotune.policies.sizing import Capacity
from autotune.scenario import Scenario

FIT_S = 300.0  # the trend line is fitted over this much history
QUANTILE = 0.95  # of the recent actual/predicted ratios: the margin held


def predict(rates: list[float], fit_windows: int, lead_windows: int) -> float:
    """Most load expected over the next ``lead_windows``: the trend line's level now, plus its rise.

    The line is a Theil-Sen fit (median of pairwise slopes, median intercept),
    which ignores bursts of up to a quarter of the fit: the prediction follows
    the load a burst returns to, and the recorded misses say how far above it
    bursts go. The rise is capped at half the level; the margin covers the rest.
    """
    y = np.asarray(rates[-fit_windows:], dtype=float)
    if len(y) < 3:
        return float(y[-1]) if len(y) else 0.0
    x = np.arange(len(y), dtype=float)
    i, j = np.triu_indices(len(y), k=1)
    slope = float(np.median((y[j] - y[i]) / (j - i)))
    level = max(0.0, float(np.median(y - slope * x)) + slope * x[-1])
    return level + min(max(0.0, slope * lead_windows), level / 2)


def record(rates: list[float], ratios: list[float], fit_windows: int, lead_windows: int,
           memory_windows: int) -> list[float]:
    """``ratios`` with the prediction made one lead ago scored against the busiest window since.

    ``rates`` ends at the current window; the prediction made ``lead_windows``
    ago is derived again from the rates seen then (``rates[:-lead_windows]``),
    so the state needs no list of past predictions, only ``fit + lead + 1``
    rates (:func:`history`).
    """
    if len(rates) <= lead_windows:
        return list(ratios)
    pred, came = predict(rates[:-lead_windows], fit_windows, lead_windows), max(rates[-lead_windows:])
    if pred <= 0:
        return list(ratios)
    return (list(ratios) + [min(came / pred, MAX_RATIO)])[-memory_windows:]


def history(fit_windows: int, lead_windows: int) -> int:
    """Rates to keep: a fit's worth as of one lead ago, plus the lead, plus the current window."""
    return fit_windows + lead_windows + 1


def margin(ratios: list[float], quantile: float = QUANTILE) -> float:
    """The ``quantile`` of the recorded ratios, at least 1 (``DEFAULT_HEADROOM`` before there are any)."""
    if not ratios:
        return DEFAULT_HEADROOM
    return max(1.0, float(np.quantile(ratios, quantile)))


@dataclass(frozen=True)
class PredictivePolicy:
    rule: HeadroomPolicy  # pools, capacities and the spill-over fill; rule.headroom is M
    fit_windows: int
    lead_windows: int  # the cheapest pool's start-up lead
    memory_windows: int
    quantile: float = QUANTILE
    name: str = "predictive"
    # Per pool of rule.order, its own lead; empty when every pool has the cheapest pool's lead.
    pool_leads: tuple[int, ...] = ()

    def initial_state(self) -> PolicyState:
        return {"rates": [], "ratios": [], "lead_ratios": {}, "dispersion": []}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        leads = self.pool_leads or (self.lead_windows,) * len(self.rule.order)
        rates = (list(state["rates"]) + [obs.arrival_rate])[-history(self.fit_windows, max(leads)):]
        ratios = record(rates, state["ratios"], self.fit_windows, self.lead_windows, self.memory_windows)
        others = {str(n): record(rates, state.get("lead_ratios", {}).get(str(n), []), self.fit_windows, n,
                                 self.memory_windows) for n in sorted(set(leads) - {self.lead_windows})}
        seen, d = dispersion_seen(obs, state)
        rule = self.rule.at(d)
        sizes, whys = {}, []
        for n in sorted(set(leads)):
            pred = predict(rates, self.fit_windows, n)
            kept = ratios if n == self.lead_windows else others[str(n)]
            m = margin(kept, self.quantile)
            sizes[n] = self.rule.headroom * m * pred
            whys.append(f"{self.rule.headroom:g}x {m:.2f} (p{100 * self.quantile:g} of {len(kept)} actual/predicted) "
                        f"x {pred:.0f} req/s predicted over {n} windows = {sizes[n]:.0f} req/s{rule.burst_note()}")
        new_state = {"rates": rates, "ratios": ratios, "lead_ratios": others, "dispersion": seen}
        if len(sizes) == 1:
            return rule.fleet(sizes[self.lead_windows], whys[0]), new_state
        # Each pool takes its count from the fleet sized for its own lead: a pool that starts faster than the
        # cheapest is sized for the load its own, shorter start-up ahead.
        fleets = {n: rule.fleet(size, "") for n, size in sizes.items()}
        replicas = dict(fleets[self.lead_windows].replicas)
        for name, n in zip(self.rule.order, leads, strict=True):
            replicas[name] = fleets[n].replicas[name]
        parts = "; ".join(f"{name}: {replicas[name]} (lead {n})" for name, n in zip(self.rule.order, leads))
        return Decision(replicas, "; ".join(whys) + "; " + parts, dict(rule.batch)), new_state


def windows(scenario: Scenario, pool: str) -> tuple[int, int, int]:
    """(fit, lead, memory) in control windows; the lead is ``pool``'s node provisioning plus model load."""
    step = scenario.control_interval_s
    return max(3, round(FIT_S / step)), lead_of(scenario, pool), max(1, round(MEMORY_S / step))


def lead_of(scenario: Scenario, pool: str) -> int:
    """``pool``'s start-up lead in control windows: node provisioning plus model load."""
    first = next(p for p in scenario.runtime_pools() if p.name == pool)
    return max(1, math.ceil((first.provision_s + first.load_s) / scenario.control_interval_s))


def make_predictive(scenario: Scenario, capacity: Capacity, headroom: float = 1.0, name: str = "predictive",
                    per_pool_lead: bool = True) -> PredictivePolicy:
    """The rule. A pool that starts faster than the cheapest (a warm node pool) is sized for its own, shorter
    lead: it can wait for the load to come closer. A slower one is sized for the cheapest pool's lead, as the
    rest: asked for one of its own start-ups ahead, the A100 of ``mixed-large`` cost 33% more on the own
    workload for no SLO (the margin learnt over 34 windows is wide). ``per_pool_lead=False`` sizes every pool
    for the cheapest pool's lead (the RL ``fill`` prior)."""
    rule = make_headroom(scenario, capacity, headroom, name)
    fit, lead, memory = windows(scenario, rule.pool)
    leads = tuple(min(lead_of(scenario, p), lead) for p in rule.order)
    return PredictivePolicy(rule, fit, lead, memory, name=name,
                            pool_leads=leads if per_pool_lead and set(leads) != {lead} else ())
