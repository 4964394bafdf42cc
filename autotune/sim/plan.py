"""``oracle`` sized on the arrivals themselves: a bound on cost at the SLO for any trace, Poisson or not.

The capacity model (:mod:`autotune.sim.capacity`) is measured under Poisson arrivals. Where requests come
in clumps (an LLM frontend releasing a conversation's turns at once) or in sub-second spikes, a fleet it
says carries a window's peak misses most of that window, and a plan sized by it is no bound at all. So
every window's fleet is chosen by simulating candidate fleets on that window's actual arrivals:

1. *fit*: per window, starting from the modeled answer, the cheapest listed fleet (galloping, then
   bisecting over the menu) under which the window's requests miss no more than its share of the error
   budget, ``floor((1 - target) x requests)``. Each trial is the fixed fleet, started, serving the
   window's arrivals after ``WARMUP_S`` of the arrivals before it, so a backlog at the boundary is felt;
2. *relax*: the run's error budget is spent where it saves the most: a window is stepped down one fleet
   at a time, the one that costs the fewest extra misses per dollar saved first, until the misses the
   trials predict reach ``RELAX_SHARE`` of the run's budget (the rest covers what trials of one window
   cannot see: a backlog carried across windows);
3. *check*: the whole plan is simulated; while the run misses the target, the windows that missed more
   than their trials predicted are stepped up again.

The plans are cached per (scenario, arrivals, insurance), so ``oracle`` and ``oracle-startup`` share one.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import OrderedDict

import numpy as np

from autotune.policies.oracle import OraclePolicy, PlanBasis, oracle_from, plan_basis, rate_plan
from autotune.policies.sizing import Capacity
from autotune.policies.static import StaticPolicy
from autotune.scenario import Scenario
from autotune.sim import kernel as K
from autotune.sim.capacity import fixed_pool
from autotune.sim.cluster import ClusterSim, SimConfig
from autotune.sim.run import simulate
from autotune.workload.arrivals import Arrivals

WARMUP_S = 5.0
RELAX_SHARE = 0.7
CHECK_ROUNDS = 4
PLAN_SEED = 11
_CACHE: OrderedDict[tuple[str, str, float], list[int]] = OrderedDict()
_CACHE_SIZE = 8


class WindowTrials:
    """Misses of a window's requests under a fixed fleet, simulated on the window's own arrivals (cached)."""

    def __init__(self, basis: PlanBasis, arrivals: Arrivals) -> None:
        self.basis, self.arrivals = basis, arrivals
        sc = basis.scenario
        self.slo_s = sc.slo.latency_ms / 1e3
        self.step = sc.control_interval_s
        edges = np.arange(len(basis.peak) + 1) * self.step
        self.lo = np.searchsorted(arrivals.times, edges)  # first request of each window
        self.warm = np.searchsorted(arrivals.times, np.maximum(edges - WARMUP_S, 0.0))
        self.cache: dict[tuple[int, int], int] = {}
        self.trials = 0

    def requests(self, k: int) -> int:
        return int(self.lo[k + 1] - self.lo[k])

    def allowed(self, k: int) -> int:
        return int(math.floor((1.0 - self.basis.scenario.slo.target) * self.requests(k) + 1e-9))

    def misses(self, k: int, i: int) -> int:
        if self.requests(k) == 0:
            return 0
        key = (k, i)
        if key not in self.cache:
            self.cache[key] = self._simulate(k, i)
        return self.cache[key]

    def _simulate(self, k: int, i: int) -> int:
        self.trials += 1
        b = self.basis
        w0, a, hi = int(self.warm[k]), int(self.lo[k]), int(self.lo[k + 1])
        t0 = k * self.step
        start = max(t0 - WARMUP_S, 0.0)
        t = self.arrivals.times[w0:hi] - start
        span = float(t0 + self.step - start)
        fleet = b.fleet(i)
        pools = [fixed_pool(p.spec, fleet[p.name], b.batch[p.name]) for p in b.pools]
        sc = b.scenario.model_copy(update={"pools": pools, "control_interval_s": span,
                                           "drain_s": 2 * self.slo_s + 1.0})
        res = simulate(sc, Arrivals(t, self.arrivals.tokens[w0:hi], span, "window"),
                       StaticPolicy(fleet, dict(b.batch)), PLAN_SEED + k, SimConfig(instant_start=True))
        return int(missed(res.sim, self.slo_s)[a - w0:hi - w0].sum())

    def cheapest(self, k: int, start: int) -> int:
        """The cheapest listed fleet whose misses stay within window ``k``'s share of the error budget."""
        top = len(self.basis.have) - 1
        ok = self.allowed(k)
        if self.requests(k) == 0:
            return 0
        if self.misses(k, start) <= ok:
            good, jump = start, 1
            while good - jump >= 0 and self.misses(k, good - jump) <= ok:
                good, jump = good - jump, jump * 2
            bad = max(good - jump, -1)
        else:
            bad, jump = start, 1
            while bad + jump <= top and self.misses(k, bad + jump) > ok:
                bad, jump = bad + jump, jump * 2
            good = min(bad + jump, top)
            if self.misses(k, good) > ok:
                return top  # nothing carries this window: the largest fleet misses least
        while good - bad > 1:
            mid = (good + bad) // 2
            if self.misses(k, mid) <= ok:
                good = mid
            else:
                bad = mid
        return good


def _relax(trials: WindowTrials, choice: list[int], floor: list[int], budget: int) -> list[int]:
    """Step windows down, fewest extra misses per dollar first, while the predicted misses fit ``budget``."""
    b = trials.basis
    choice = list(choice)
    spent = sum(trials.misses(k, i) for k, i in enumerate(choice))
    heap: list[tuple[float, int, int]] = []

    def push(k: int) -> None:
        i = choice[k]
        if i - 1 < floor[k] or trials.requests(k) == 0:
            return
        saved = float(b.cost[i] - b.cost[i - 1])
        if saved <= 0:
            return
        extra = trials.misses(k, i - 1) - trials.misses(k, i)
        heapq.heappush(heap, (max(extra, 0) / saved, k, i))

    for k in range(len(choice)):
        push(k)
    limit = trials.trials + 3 * len(choice)  # a step down costs one trial; a window rarely takes more than a few
    while heap and trials.trials < limit:
        _, k, i = heapq.heappop(heap)
        if choice[k] != i:
            continue
        extra = trials.misses(k, i - 1) - trials.misses(k, i)
        if spent + extra > budget:
            continue
        choice[k], spent = i - 1, spent + extra
        push(k)
    return choice


def missed(sim: ClusterSim, slo_s: float) -> np.ndarray:
    """Per request of a finished run: not served, or served later than the SLO."""
    return (sim.status != K.DONE) | (sim.finish_t - sim.arr_t > slo_s + 1e-12)


def _window_misses(res_times: np.ndarray, missed: np.ndarray, step: float, n: int) -> np.ndarray:
    k = np.minimum((res_times // step).astype(np.int64), n - 1)
    return np.bincount(k, weights=missed.astype(float), minlength=n).astype(np.int64)


def fit_plan(basis: PlanBasis, arrivals: Arrivals) -> list[int]:
    """Per window, the index of its listed fleet: fitted, relaxed and checked on the real arrivals."""
    sc = basis.scenario
    trials = WindowTrials(basis, arrivals)
    modeled = rate_plan(basis)
    floor = [basis.index_for(float(f)) if f > 0 else 0 for f in basis.floor]
    fitted = [max(trials.cheapest(k, i), floor[k]) for k, i in enumerate(modeled)]
    n = len(arrivals)
    budget = int(math.floor((1.0 - sc.slo.target) * n * RELAX_SHARE))
    choice = _relax(trials, fitted, floor, budget)
    for _ in range(CHECK_ROUNDS):
        s = simulate(sc, arrivals, oracle_from(basis, choice, "fitted"), PLAN_SEED, SimConfig(instant_start=True)).sim
        miss = missed(s, trials.slo_s)
        if n == 0 or 1.0 - miss.sum() / n >= sc.slo.target:
            break
        actual = _window_misses(s.arr_t, miss, basis.step, len(choice))
        worse = [k for k in range(len(choice)) if actual[k] > trials.misses(k, choice[k])
                 and choice[k] < len(basis.have) - 1]
        if not worse:
            break
        for k in worse:
            choice[k] = fitted[k] if choice[k] < fitted[k] else choice[k] + 1
    return choice


def _key(scenario: Scenario, arrivals: Arrivals, insure: float) -> tuple[str, str, float]:
    h = hashlib.sha1(arrivals.times.tobytes())
    h.update(arrivals.tokens.tobytes())
    h.update(repr(arrivals.duration_s).encode())
    return scenario.model_dump_json(), h.hexdigest(), float(insure)


def make_oracle(scenario: Scenario, arrivals: Arrivals, capacity: Capacity, start_up: bool = False,
                insure: float = 0.0) -> OraclePolicy:
    """The clairvoyant plan, each window's fleet fitted on its real arrivals (this module's docstring).

    ``start_up``: the same plan asked for early enough for the pools' start-up delays (``oracle-startup``);
    ``insure``: never below ``POLICY+crowd:K``'s floor (``oracle+crowd:K``)."""
    basis = plan_basis(scenario, arrivals, capacity, insure)
    key = _key(scenario, arrivals, insure)
    if key in _CACHE:
        _CACHE.move_to_end(key)
    else:
        _CACHE[key] = fit_plan(basis, arrivals)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return oracle_from(basis, _CACHE[key], "fitted on its arrivals", start_up)
