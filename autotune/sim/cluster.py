"""The simulated cluster: nodes, replicas, costs and decisions around the numba kernel.

``ClusterSim`` is the system model. It owns every array the kernel touches, its
own RNG and its own clock; ``run_until(t)`` is SimPy's ``run(until=t)`` and one
control window of the gym env. Nodes (and so dollars) are tracked here, in
Python, because they change only at decisions and lifecycle edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from autotune.core import burst
from autotune.core.types import Decision, Observation, PoolObs
from autotune.scenario import PoolRuntime, Scenario
from autotune.sim import kernel as K
from autotune.workload.arrivals import Arrivals


def percentiles(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """numpy's default (linear) percentiles, from one partition instead of a sort or several."""
    n = x.size
    if n == 0:
        return [math.nan] * len(qs)
    pos = [q / 100.0 * (n - 1) for q in qs]
    kth = sorted({int(math.floor(p)) for p in pos} | {min(int(math.floor(p)) + 1, n - 1) for p in pos})
    part = np.partition(x, kth)
    out = []
    for p in pos:
        i = int(math.floor(p))
        j = min(i + 1, n - 1)
        out.append(float(part[i]) + (p - i) * (float(part[j]) - float(part[i])))
    return out


@dataclass
class Node:
    """One GPU node: billed from request until released (or preempted)."""

    pool: int
    requested_s: float
    ready_s: float
    warn_s: float  # spot interruption notice (inf for on-demand)
    kill_s: float
    slot: int = -1  # replica slot it hosts, -1 when idle
    idle_since: float = math.nan
    ended_s: float = math.inf

    def billed_s(self, t0: float, t1: float) -> float:
        return max(0.0, min(t1, self.ended_s) - max(t0, self.requested_s))


@dataclass
class Window:
    """What happened in one control window, as recorded for metrics and plots."""

    t0: float
    t1: float
    arrivals: int
    completed: int
    dropped: int  # lost without an answer: rejected at the queue cap, or killed with a spot replica
    latency_ms: np.ndarray
    replicas: dict[str, dict[str, int]]
    batch_size: dict[str, int]
    mean_batch: dict[str, float]
    cost_usd: float
    obs: Observation | None = None
    decision: Decision | None = None
    applied: Decision | None = None
    guard_notes: tuple[str, ...] = ()  # what the guards changed between decision and applied
    changed: bool = False
    rejected: int = 0  # of ``dropped``: turned away at the queue cap (Serve's fast 503)
    timed_out: int = 0  # abandoned by their client while queued at the router
    late: int = 0  # completed, over the SLO
    max_queued: dict[str, int] | None = None  # each pool's queue cap in the window (-1: unbounded)


@dataclass
class SimConfig:
    instant_start: bool = False  # oracle: no provisioning or load delay, no idle nodes
    extra_slots: int = 8


class ClusterSim:
    """A Ray Serve deployment on a GPU cluster, simulated per request."""

    def __init__(self, scenario: Scenario, arrivals: Arrivals, seed: int, config: SimConfig | None = None) -> None:
        self.scenario = scenario
        self.arrivals = arrivals
        self.config = config or SimConfig()
        self.pools: list[PoolRuntime] = scenario.runtime_pools()
        self.rng = np.random.default_rng([seed, 0x51A])
        self.now = 0.0
        n = len(arrivals)
        self.arr_t = np.ascontiguousarray(arrivals.times, dtype=np.float64)
        # The router sees a request after the HTTP proxy has handled it; latency counts from arrival.
        self.route_t = self.arr_t + scenario.proxy_overhead_ms / 1e3
        self.tokens = np.ascontiguousarray(arrivals.tokens, dtype=np.float32)
        self.start_t = np.full(n, np.nan)
        self.finish_t = np.full(n, np.nan)
        self.served = np.full(n, -1, dtype=np.int64)  # replica id that finished the request
        self.status = np.zeros(n, dtype=np.int8)
        self.done_idx = np.zeros(n, dtype=np.int64)
        P = len(self.pools)
        self.pf = np.zeros((P, K.NPF))
        self.pi = np.zeros((P, K.NPI), dtype=np.int64)
        for p in self.pools:
            self.pf[p.index] = [p.fixed_ms, p.per_item_ms, p.per_token_ms, p.spec.batch_wait_timeout_s,
                                p.noise_sigma, p.max_tokens]
            self.pi[p.index, K.BATCH] = p.spec.batch_size
            self.pi[p.index, K.MAX_ONGOING] = p.spec.max_ongoing_requests
        self.max_queued = {p.name: scenario.pool_max_queued(p.spec) for p in self.pools}
        self.acc = np.zeros((P, K.NACC))
        self.g = np.zeros(K.NG, dtype=np.int64)
        self.g[K.GIDX] = -1
        self._set_queue_cap()
        self.krng = np.array([self.rng.integers(1, 2**63, dtype=np.uint64)], dtype=np.uint64)
        slots = sum(p.spec.max_replicas for p in self.pools) * 2 + self.config.extra_slots
        self._alloc_slots(slots)
        timeout = scenario.client_timeout_s
        # The kernel times a request's wait from the router; the client's clock started at the proxy.
        self.gf[K.CLIENT_TO] = np.inf if timeout is None else max(0.0, timeout - scenario.proxy_overhead_ms / 1e3)
        self.nodes: list[Node] = []
        self.replica_pool: list[int] = []  # replica id -> pool index; ids are never reused
        self.slot_node: dict[int, Node] = {}
        self.windows: list[Window] = []
        self._done_mark = 0
        self._drop_mark = 0
        self._reject_mark = 0
        self._timeout_mark = 0
        self._arr_mark = 0
        self._preemptions = np.zeros(P, dtype=np.int64)
        self._lat_buf = np.empty(4096, dtype=np.float32)
        for p in self.pools:
            self._scale_up(p, p.spec.initial, warm=True)

    # -- slots ---------------------------------------------------------------
    def _alloc_slots(self, n: int) -> None:
        qcap = 1 << (max(p.spec.max_ongoing_requests for p in self.pools) - 1).bit_length()  # kernel masks
        bcap = max(max(p.spec.batch_sizes) for p in self.pools)
        rf = np.full((n, K.NRF), np.inf)
        rf[:, K.RELEASED_T] = -1.0
        ri = np.zeros((n, K.NRI), dtype=np.int64)
        ri[:, K.RUN_POS] = -1
        qbuf = np.zeros((n, qcap), dtype=np.int64)
        bbuf = np.zeros((n, bcap), dtype=np.int64)
        fbuf = np.zeros((n, qcap), dtype=np.int64)  # sizes of closed batches waiting for the GPU
        run = np.zeros(n, dtype=np.int64)
        gf = np.full(K.NGF + n, np.inf)
        gf[: K.NGF] = [np.inf, 0.0, 0.0, np.inf]
        if hasattr(self, "rf"):
            m = self.rf.shape[0]
            rf[:m], ri[:m], qbuf[:m], bbuf[:m], run[:m] = self.rf, self.ri, self.qbuf, self.bbuf, self.run
            fbuf[:m] = self.fbuf
            gf[: K.NGF + m] = self.gf
        self.rf, self.ri, self.qbuf, self.bbuf, self.run, self.gf = rf, ri, qbuf, bbuf, run, gf
        self.fbuf = fbuf

    def _free_slot(self) -> int:
        # A released slot keeps RELEASED_T >= 0 until its node is collected, so it is not reused early.
        free = np.flatnonzero((self.ri[:, K.STATE] == K.FREE) & (self.rf[:, K.RELEASED_T] < 0))
        if not free.size:
            self._alloc_slots(self.rf.shape[0] * 2)
            return self._free_slot()
        return int(free[0])

    # -- fleet changes -------------------------------------------------------
    def _new_node(self, p: PoolRuntime) -> Node:
        t = self.now
        delay = 0.0 if self.config.instant_start else p.provision_s
        warn = kill = math.inf
        if p.spec.spot and p.spec.preemption_rate_per_hour > 0:
            warn = t + self.rng.exponential(3600.0 / p.spec.preemption_rate_per_hour)
            kill = warn + self.scenario.spot_warning_s
        node = Node(p.index, t, t + delay, warn, kill)
        self.nodes.append(node)
        return node

    def _scale_up(self, p: PoolRuntime, k: int, warm: bool = False) -> None:
        for _ in range(k):
            idle = [n for n in self.nodes if n.pool == p.index and n.slot < 0 and n.ended_s == math.inf
                    and n.warn_s > self.now]
            node = max(idle, key=lambda n: n.idle_since) if idle else self._new_node(p)
            if warm:  # initial fleet: already provisioned and loaded at t=0
                node.ready_s = self.now
            slot = self._free_slot()
            node.slot, node.idle_since = slot, math.nan
            self.slot_node[slot] = node
            load = 0.0 if (warm or self.config.instant_start) else p.load_s
            self.replica_pool.append(p.index)
            K.start_replica(slot, len(self.replica_pool) - 1, self.now, p.index, max(node.ready_s, self.now), load,
                            node.warn_s, node.kill_s, self.rf, self.ri, self.pf, self.pi, self.qbuf, self.bbuf,
                            self.fbuf, self.tokens, self.start_t, self.status, self.acc, self.run, self.g, self.gf,
                            self.krng, self.route_t)

    def _scale_down(self, p: PoolRuntime, k: int) -> None:
        st = self.ri[:, K.STATE]
        mine = self.ri[:, K.POOL] == p.index
        ongoing = self.ri[:, K.QLEN] + self.ri[:, K.BN]
        # Ray Serve stops replicas that are not yet running first, then the least busy.
        order: list[int] = []
        for state in (K.PENDING, K.STARTING):
            order += [int(s) for s in np.flatnonzero(mine & (st == state))][::-1]
        running = np.flatnonzero(mine & (st == K.RUNNING))
        order += [int(s) for s in running[np.argsort(ongoing[running], kind="stable")]]
        for slot in order[:k]:
            K.drain_replica(slot, self.now, self.rf, self.ri, self.run, self.g, self.gf)
        self._collect_released()

    def _collect_released(self) -> None:
        """Hand nodes of released replicas back to the idle pool (or end them)."""
        for slot in np.flatnonzero(self.rf[:, K.RELEASED_T] >= 0):
            slot = int(slot)
            t = float(self.rf[slot, K.RELEASED_T])
            node = self.slot_node.pop(slot)
            node.slot = -1
            if self.ri[slot, K.KILLED]:
                node.ended_s = t
            elif self.config.instant_start:
                node.ended_s = t
            else:
                node.idle_since = t
            self.rf[slot, K.RELEASED_T] = -1.0
            self.ri[slot, K.KILLED] = 0

    def _expire_idle(self, t: float) -> None:
        for n in self.nodes:
            if n.slot < 0 and n.ended_s == math.inf:
                end = min(n.idle_since + self.scenario.node_idle_timeout_s, n.kill_s)
                if end <= t:
                    n.ended_s = end

    def counts(self) -> dict[str, dict[str, int]]:
        """Replicas by pool and state (free slots hold no replica and are not counted)."""
        n_states = K.DRAINING + 1
        c = np.bincount(self.ri[:, K.POOL] * n_states + self.ri[:, K.STATE],
                        minlength=len(self.pools) * n_states).reshape(-1, n_states)
        return {p.name: {"pending": int(c[p.index, K.PENDING]), "starting": int(c[p.index, K.STARTING]),
                         "running": int(c[p.index, K.RUNNING]), "draining": int(c[p.index, K.DRAINING])}
                for p in self.pools}

    def targets(self) -> dict[str, int]:
        return {name: c["pending"] + c["starting"] + c["running"] for name, c in self.counts().items()}

    def _set_queue_cap(self) -> None:
        """The shared router queue's cap from the pools' ``max_queued_requests``.

        Ray Serve counts queued requests per deployment at each handle (``Router.wrap_request_assignment``)
        and rejects beyond that deployment's cap. The served app's ingress holds one handle per pool and
        sends each request to the pool with the most free capacity, so under overload every pool's handle
        queue fills towards its own cap and requests are rejected once all are full: on the simulator's one
        FIFO queue, a cap of the sum of the pools' caps. One unbounded pool takes any overflow, so then the
        queue is unbounded.
        """
        caps = list(self.max_queued.values())
        self.g[K.MAX_QUEUED] = -1 if any(c < 0 for c in caps) else sum(caps)

    def batch_sizes(self) -> dict[str, int]:
        return {p.name: int(self.pi[p.index, K.BATCH]) for p in self.pools}

    def apply(self, decision: Decision, warm: bool = False) -> bool:
        """Make the fleet match ``decision`` (already within bounds); True if anything changed.

        ``warm`` adds replicas already provisioned and loaded: the fleet a run starts with.
        """
        changed = False
        targets = self.targets()
        for p in self.pools:
            if p.name in decision.batch_size:
                b = int(decision.batch_size[p.name])
                if b != self.pi[p.index, K.BATCH]:
                    self.pi[p.index, K.BATCH] = b
                    changed = True
            if p.name in decision.max_queued:
                q = max(-1, int(decision.max_queued[p.name]))
                if q != self.max_queued[p.name]:
                    self.max_queued[p.name] = q
                    self._set_queue_cap()
                    changed = True
            if p.name in decision.replicas:
                delta = int(decision.replicas[p.name]) - targets[p.name]
                if delta > 0:
                    self._scale_up(p, delta, warm=warm)
                elif delta < 0:
                    self._scale_down(p, -delta)
                changed = changed or delta != 0
        return changed

    # -- time ----------------------------------------------------------------
    def run_until(self, t1: float) -> Window:
        t0 = self.now
        self.acc[:, :] = 0.0
        self.acc[:, K.LAST_T] = t0
        self.gf[K.RQ_INT] = 0.0
        self.gf[K.RQ_LAST_T] = t0
        caps = dict(self.max_queued)  # what the window ran with (a decision at its end may change it)
        K.run_until(t1, self.route_t, self.tokens, self.start_t, self.finish_t, self.served, self.status, self.done_idx,
                    self.rf, self.ri, self.pf, self.pi, self.qbuf, self.bbuf, self.fbuf, self.acc, self.run, self.g,
                    self.gf, self.krng)
        self.now = t1
        # Close the time integrals at the window's end.
        self.acc[:, K.ONGOING_INT] += (t1 - self.acc[:, K.LAST_T]) * self.pi[:, K.ONGOING]
        self.gf[K.RQ_INT] += (t1 - self.gf[K.RQ_LAST_T]) * self.g[K.RQ_LEN]
        self._collect_released()
        self._expire_idle(t1)
        for n in self.nodes:  # an interruption notice counts whether or not the replica drained in time
            if t0 < n.warn_s <= t1 and n.ended_s >= n.warn_s:
                self._preemptions[n.pool] += 1
        lo, hi = self._done_mark, int(self.g[K.DONE_N])
        if self._lat_buf.size < hi - lo:
            self._lat_buf = np.empty(2 * (hi - lo), dtype=np.float32)
        on_time = K.window_latencies(self.done_idx, lo, hi, self.arr_t, self.finish_t,
                                     self.scenario.slo.latency_ms, self._lat_buf)
        lat = self._lat_buf[: hi - lo].copy()
        arrivals = int(self.g[K.NEXT_ARR]) - self._arr_mark
        dispersion = burst.of_times(self.arr_t[self._arr_mark:int(self.g[K.NEXT_ARR])], t0, t1)
        dropped = int(self.g[K.DROP_N]) - self._drop_mark
        rejected = int(self.g[K.REJECT_N]) - self._reject_mark
        timed_out = int(self.g[K.TIMEOUT_N]) - self._timeout_mark
        self._reject_mark = int(self.g[K.REJECT_N])
        self._timeout_mark = int(self.g[K.TIMEOUT_N])
        self._done_mark = int(self.g[K.DONE_N])
        self._arr_mark = int(self.g[K.NEXT_ARR])
        self._drop_mark = int(self.g[K.DROP_N])
        mean_batch = {p.name: (self.acc[p.index, K.BATCH_ITEMS] / self.acc[p.index, K.BATCHES]
                               if self.acc[p.index, K.BATCHES] else 0.0) for p in self.pools}
        cost = sum(n.billed_s(t0, t1) * self.pools[n.pool].price_per_hour for n in self.nodes) / 3600.0
        w = Window(t0, t1, arrivals, hi - lo, dropped, lat, self.counts(), self.batch_sizes(), mean_batch, cost,
                   rejected=rejected, timed_out=timed_out, late=(hi - lo) - on_time, max_queued=caps)
        w.obs = replace(self._observe(w, on_time), dispersion=dispersion)
        self.windows.append(w)
        return w

    def _observe(self, w: Window, on_time: int) -> Observation:
        span = max(w.t1 - w.t0, 1e-9)
        lat = w.latency_ms
        pcts = percentiles(lat, (50.0, 95.0, 99.0))
        att = on_time / lat.size if lat.size else math.nan
        running = {name: c["running"] for name, c in w.replicas.items()}
        total_running = sum(running.values())
        rq_avg = self.gf[K.RQ_INT] / span
        pools = []
        for p in self.pools:
            c = w.replicas[p.name]
            share = running[p.name] / total_running if total_running else 1.0 / len(self.pools)
            pools.append(PoolObs(
                name=p.name, running=c["running"], starting=c["starting"], pending=c["pending"],
                draining=c["draining"], batch_size=w.batch_size[p.name],
                ongoing_requests=float(self.acc[p.index, K.ONGOING_INT] / span),
                queued_requests=float(rq_avg * share),
                preemptions=int(self._preemptions[p.index]),
                max_queued=self.max_queued[p.name],
            ))
        self._preemptions[:] = 0
        return Observation(
            time_s=w.t1, window_s=span, arrivals=w.arrivals, completed=w.completed, dropped=w.dropped,
            timed_out=w.timed_out,
            p50_ms=float(pcts[0]), p95_ms=float(pcts[1]), p99_ms=float(pcts[2]), slo_attainment=att,
            queued_requests=int(self.g[K.RQ_LEN]), pools=tuple(pools),
        )

    def finish(self) -> None:
        """End the run: whatever has not finished by now counts as dropped; stop all billing."""
        unfinished = self.status == K.WAITING
        self.status[unfinished] = K.DROPPED
        for n in self.nodes:
            if n.ended_s == math.inf:
                n.ended_s = self.now if n.slot >= 0 else min(self.now, n.idle_since + self.scenario.node_idle_timeout_s)

    def total_cost(self) -> float:
        return sum(n.billed_s(0.0, math.inf) * self.pools[n.pool].price_per_hour for n in self.nodes) / 3600.0

    def gpu_hours(self) -> float:
        return sum(n.billed_s(0.0, math.inf) for n in self.nodes) / 3600.0
