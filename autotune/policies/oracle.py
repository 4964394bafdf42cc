"""``oracle``: a clairvoyant plan, reported as a bound, not a deployable policy.

For every control window it knows the arrivals to come and picks the cheapest
fleet (replicas and batch size per pool, within the pools' limits) that keeps them
within the SLO. This module holds the plan's pieces and the first answer, from the
capacity model (:func:`rate_oracle`: the SLO capacity at that fleet size covers the
window's busiest slice); :mod:`autotune.sim.plan` fits each window on its real
arrivals, which is what makes it a bound on bursty traffic. It is
simulated with no provisioning or model-load delay and no idle nodes, so
whatever any real policy pays beyond it is the price of not knowing the future
and of start-up delays.

``make_oracle(..., start_up=True)`` separates the two: the same clairvoyant
plan, started early enough for the pools' real start-up delays (node
provisioning plus model load) and simulated with them, from the scenario's
initial fleet as every real policy is. What a policy pays beyond *that* is the
price of not knowing the future alone.

``make_oracle(..., insure=K)`` plans the same way but never holds less than
``POLICY+crowd:K``'s floor: the fleet that carries K x the calm load (the
median window rate of the last 10 minutes, as the floor counts it from the
windows seen so far). The gap between it and ``oracle`` is what that insurance
costs in hindsight (``bench/price_breakdown.py``). It is a reference, not a
strict bound: a policy that holds the floor and every peak pays at least as
much, but one that lets a short peak queue, or holds less than the floor for a
while, can pay less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autotune.core.types import Decision, Observation, PolicyState
from autotune.policies.crowd import CALM_S, calm_load
from autotune.policies.predictive import lead_of
from autotune.policies.sizing import Capacity, MixFn, fleet_size_limit, gpu_groups
from autotune.scenario import PoolRuntime, Scenario
from autotune.workload.arrivals import Arrivals

MAX_COMBOS = 200_000
MAX_MEASURED = 24  # mixed-GPU fleets one menu measures at most (FleetMenu._measure)
PEAK_BIN_S = 5.0


def _best_batch(capacity: Capacity, p: PoolRuntime) -> tuple[int, float]:
    caps = {b: capacity.replica(p, b) for b in p.spec.batch_sizes}
    b = max(caps, key=lambda k: (caps[k], -k))
    return b, caps[b]


class FleetMenu:
    """Every fleet worth buying, cheapest first, with its pooled SLO capacity, capacity rising.

    A fleet is listed only if it carries more than every cheaper one, so the cheapest fleet for a
    rate is the first that covers it. Capacity is pooled across pools on the same GPU
    (:func:`pooled_capacity`, vectorized); ``caps`` (per replica) only marks the pools that can
    serve within the SLO at all. With ``mixed``, a fleet that mixes GPU types is measured
    (:class:`MixedFleets`) when it is the answer to a question (:meth:`cover`, :meth:`upto`),
    and the list made again: the model is wrong both ways for such fleets, and measuring the
    whole grid (25,000 fleets on ``mixed``) would take hours.
    """

    def __init__(self, pools: list[PoolRuntime], caps: list[float], totals: list[tuple[float, ...]],
                 groups: dict[str, str], mixed: MixFn | None = None,
                 batch: dict[str, int] | None = None) -> None:
        lo = [p.spec.min_replicas for p in pools]
        hi = [p.spec.max_replicas for p in pools]
        self.usable = [c > 0 for c in caps]
        if any(self.usable) and math.prod(h - m + 1 for m, h in zip(lo, hi)) > MAX_COMBOS:
            # all but the best pool at min
            last = min((i for i in range(len(pools)) if self.usable[i]),
                       key=lambda i: pools[i].price_per_hour / caps[i])
            hi = [h if i == last else m for i, (m, h) in enumerate(zip(lo, hi))]
        grid = np.stack(np.meshgrid(*[np.arange(m, h + 1) for m, h in zip(lo, hi)], indexing="ij"), -1)
        self.fleets = grid.reshape(-1, len(pools))
        self.have = np.zeros(len(self.fleets))
        for i, t in enumerate(totals):
            if self.usable[i]:
                same = [j for j, q in enumerate(pools) if self.usable[j] and groups[q.name] == groups[pools[i].name]]
                size = self.fleets[:, same].sum(axis=1)
                curve = np.asarray(t, dtype=float)
                k = np.minimum(size, len(curve) - 1)
                self.have += self.fleets[:, i] * np.divide(curve[k], k, out=np.zeros(len(k)), where=k > 0)
        self.cost = self.fleets @ np.asarray([p.price_per_hour for p in pools])
        kinds = sorted({groups[p.name] for p, u in zip(pools, self.usable) if u})
        on_kind = [self.fleets[:, [j for j, p in enumerate(pools) if self.usable[j] and groups[p.name] == g]].sum(1)
                   for g in kinds]
        self.mixes = (np.stack(on_kind, -1) > 0).sum(axis=1) > 1 if kinds else np.zeros(len(self.fleets), bool)
        self.measured = np.zeros(len(self.fleets), dtype=bool)
        self.pools, self.mixed, self.batch = pools, mixed, batch or {}

    def listed(self) -> np.ndarray:
        """Indices of the listed fleets, cheapest first, capacity rising."""
        return self._listed()

    def _listed(self) -> np.ndarray:
        order = np.lexsort((-self.have, self.fleets.sum(axis=1), self.cost))  # cheapest, fewest replicas, most cap
        keep = self.have[order] > np.maximum.accumulate(np.concatenate([[-1.0], self.have[order][:-1]]))
        return order[keep]

    def _measure(self, i: int) -> bool:
        """Measure fleet ``i`` if it mixes GPUs and is not yet measured (within ``MAX_MEASURED``); True if it was.

        Past the budget the model stands, as it did for every mix before measuring: only rates beyond what
        the cheapest GPU's quotas carry ask about many mixes (the Azure code trace's bursts on ``mixed``)."""
        if self.mixed is None or not self.mixes[i] or self.measured[i] or self.measured.sum() >= MAX_MEASURED:
            return False
        fleet = {p.name: int(n) for p, n, u in zip(self.pools, self.fleets[i], self.usable) if u and n}
        self.have[i] = self.mixed(fleet, self.batch, float(self.have[i]))
        self.measured[i] = True
        return True

    def cover(self, rate: float) -> int | None:
        """Index of the cheapest fleet that carries ``rate`` (None if none does)."""
        last = int(self._upto(rate)[-1])
        return last if self.have[last] >= rate - 1e-6 else None

    def upto(self, rate: float) -> tuple[np.ndarray, np.ndarray]:
        """The listed fleets up to the first that carries ``rate`` (all of them if none does), each measured.

        The cheaper ones are measured too: the model understates some mixes (an A100 beside L4s), and one of
        them may carry ``rate`` for less."""
        idx = self._upto(rate)
        return self.fleets[idx], self.have[idx]

    def _upto(self, rate: float) -> np.ndarray:
        while True:
            listed = self._listed()
            k = min(int(np.searchsorted(self.have[listed], rate - 1e-6)), len(listed) - 1)
            if not any([self._measure(int(i)) for i in listed[:k + 1]]):
                return listed[:k + 1]


def fleet_menu(pools: list[PoolRuntime], caps: list[float], totals: list[tuple[float, ...]],
               groups: dict[str, str], mixed: MixFn | None = None,
               batch: dict[str, int] | None = None) -> FleetMenu:
    return FleetMenu(pools, caps, totals, groups, mixed, batch)


def cheapest_fleet(rate: float, menu: FleetMenu, pools: list[PoolRuntime]) -> tuple[int, ...]:
    """The cheapest fleet of ``menu`` whose capacity covers ``rate``; every pool at its quota if none does."""
    k = menu.cover(rate)
    if k is None:
        return tuple(p.spec.max_replicas for p in pools)
    return tuple(int(n) for n in menu.fleets[k])


@dataclass(frozen=True)
class OraclePolicy:
    interval_s: float
    plan: tuple[Decision, ...]
    name: str = "oracle"
    # The instant bound starts with its first fleet ready; the plan that pays start-up delays starts from the
    # scenario's initial fleet, as every policy does, and asks for its first fleet at t=0 (subject to them).
    start_warm: bool = True
    reads_metrics: bool = False  # a plan fixed in advance
    guarded: bool = False  # a bound, not a deployable policy: no live guards slow it down

    def initial_state(self) -> PolicyState:
        return {}

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        k = min(int(round(obs.time_s / self.interval_s)), len(self.plan) - 1)
        return self.plan[k], state

    @property
    def first(self) -> Decision:
        return self.plan[0]


def lead_windows(scenario: Scenario) -> dict[str, int]:
    """Per pool, the control windows between asking for a replica on a new node and its serving."""
    return {p.name: lead_of(scenario, p.name) for p in scenario.runtime_pools()}


def started_early(plan: list[Decision], leads: dict[str, int]) -> list[Decision]:
    """``plan`` as asked for ahead of time: each pool holds, from each window on, the most replicas the plan
    needs within its lead. A replica needed again within the lead is kept rather than restarted: restarting
    would bill the start-up again and arrive no sooner."""
    out = []
    for k, d in enumerate(plan):
        replicas = {name: max(x.replicas[name] for x in plan[k:k + leads[name] + 1]) for name in d.replicas}
        out.append(Decision(replicas, f"{d.reason}; asked for up to {max(leads.values())} windows ahead",
                            d.batch_size))
    return out


def _sizing(scenario: Scenario, capacity: Capacity
            ) -> tuple[list[PoolRuntime], list[tuple[int, float]], list[tuple[float, ...]]]:
    """Pools, each pool's (best batch, per-replica SLO capacity), and its SLO capacity by fleet size."""
    pools = scenario.runtime_pools()
    chosen = [_best_batch(capacity, p) for p in pools]
    totals = [capacity.fleet(p, b, fleet_size_limit(scenario, p)) if c > 0 else (0.0,)
              for p, (b, c) in zip(pools, chosen)]
    return pools, chosen, totals


def scenario_menu(scenario: Scenario, capacity: Capacity) -> FleetMenu:
    """:func:`fleet_menu` for ``scenario``'s pools: every fleet worth buying, cheapest first, with its capacity."""
    pools, chosen, totals = _sizing(scenario, capacity)
    return fleet_menu(pools, [c for _, c in chosen], totals, gpu_groups(scenario), capacity.mixes(),
                      {p.name: b for p, (b, _) in zip(pools, chosen)})


def insured_need(peak: np.ndarray, mean: np.ndarray, factor: float, calm_windows: int) -> np.ndarray:
    """Per window, the rate to plan for: the window's peak, and at least ``factor`` x the calm load of the
    windows before it (what the crowd floor sees when it decides that window)."""
    if factor <= 0:
        return peak
    calm = np.array([calm_load([float(r) for r in mean[max(0, k - calm_windows):k]]) for k in range(len(mean))])
    return np.maximum(peak, factor * calm)


@dataclass
class PlanBasis:
    """What every window's choice is made from: the fleets worth buying (cheapest first, capacity rising),
    each window's arrival peak and mean, and the rate the plan must carry (the peak, or the insured floor)."""

    scenario: Scenario
    pools: list[PoolRuntime]
    batch: dict[str, int]
    menu: FleetMenu
    fleets: np.ndarray  # listed fleets, one row each, cheapest first
    cost: np.ndarray  # $/h of each listed fleet
    have: np.ndarray  # modeled (Poisson) SLO capacity of each listed fleet, rising
    peak: np.ndarray  # per window, req/s in its busiest PEAK_BIN_S slice
    mean: np.ndarray  # per window, mean req/s
    floor: np.ndarray  # per window, the insured floor's rate (0 without insurance)
    insure: float

    @property
    def step(self) -> float:
        return self.scenario.control_interval_s

    def index_for(self, rate: float) -> int:
        """The first listed fleet whose modeled capacity covers ``rate`` (the last one if none does)."""
        return min(int(np.searchsorted(self.have, rate - 1e-6)), len(self.have) - 1)

    def fleet(self, i: int) -> dict[str, int]:
        return {p.name: int(n) for p, n in zip(self.pools, self.fleets[i])}


def plan_basis(scenario: Scenario, arrivals: Arrivals, capacity: Capacity, insure: float = 0.0) -> PlanBasis:
    pools, chosen, totals = _sizing(scenario, capacity)
    caps = [c for _, c in chosen]
    batch = {p.name: b for p, (b, _) in zip(pools, chosen)}
    menu = fleet_menu(pools, caps, totals, gpu_groups(scenario), capacity.mixes(), batch)
    step = scenario.control_interval_s
    n_windows = int(math.ceil((arrivals.duration_s + scenario.drain_s) / step)) + 1
    # Size each window for its busiest PEAK_BIN_S slice, not its mean: a burst that
    # starts mid-window would otherwise queue for half a window even with foresight.
    sub = max(1, int(round(step / PEAK_BIN_S)))
    bins = np.bincount(np.minimum((arrivals.times // (step / sub)).astype(np.int64), n_windows * sub - 1),
                       minlength=n_windows * sub).reshape(n_windows, sub)
    peak = bins.max(axis=1) * sub / step
    mean = bins.sum(axis=1) / step
    floor = insured_need(np.zeros_like(peak), mean, insure, max(1, round(CALM_S / step)))
    menu.upto(float(max(peak.max(initial=0.0), floor.max(initial=0.0))))  # measure the mixes the plan asks about
    listed = menu.listed()
    return PlanBasis(scenario, pools, batch, menu, menu.fleets[listed], menu.cost[listed], menu.have[listed],
                     peak, mean, floor, insure)


def rate_plan(basis: PlanBasis) -> list[int]:
    """Per window, the listed fleet whose modeled capacity covers the window's need (peak or floor)."""
    return [basis.index_for(float(max(pk, fl))) for pk, fl in zip(basis.peak, basis.floor)]


def plan_decisions(basis: PlanBasis, choice: list[int], how: str) -> list[Decision]:
    out = []
    for k, i in enumerate(choice):
        insured = basis.floor[k] > basis.peak[k] and basis.index_for(float(basis.floor[k])) >= i
        out.append(Decision(
            basis.fleet(i),
            f"window {k}: peak {basis.peak[k]:.0f} req/s ahead"
            + (f", {basis.insure:g}x calm {basis.floor[k] / basis.insure:.0f} req/s" if insured else "")
            + f", {how}, capacity {basis.have[i]:.0f} req/s",
            dict(basis.batch),
        ))
    return out


def oracle_from(basis: PlanBasis, choice: list[int], how: str, start_up: bool = False) -> OraclePolicy:
    plan = plan_decisions(basis, choice, how)
    suffix = f"+crowd:{basis.insure:g}" if basis.insure > 0 else ""
    if start_up:
        return OraclePolicy(basis.step, tuple(started_early(plan, lead_windows(basis.scenario))),
                            "oracle-startup" + suffix, start_warm=False)
    return OraclePolicy(basis.step, tuple(plan), "oracle" + suffix)


def rate_oracle(scenario: Scenario, arrivals: Arrivals, capacity: Capacity, start_up: bool = False,
                insure: float = 0.0) -> OraclePolicy:
    """The plan sized by the capacity model alone: each window's peak against Poisson-measured capacity.

    A bound only where arrivals within a window are about Poisson; :func:`autotune.sim.plan.make_oracle`
    checks and corrects every window on its real arrivals."""
    basis = plan_basis(scenario, arrivals, capacity, insure)
    return oracle_from(basis, rate_plan(basis), "modeled", start_up)
