"""The event loop: per-request routing, batching and replica lifecycle, compiled by numba.

This is the engine's hot path and holds no policy and no cost logic. All state
lives in arrays owned by one :class:`~autotune.sim.cluster.ClusterSim`
instance (no globals, RNG state included), so thousands of simulators can run
in one process and the same seed gives the same result.

What it models, following Ray Serve 2.60:
- the router picks a replica by power of two choices on ongoing requests and
  never exceeds ``max_ongoing_requests``; when every replica is full, requests
  wait in a FIFO router queue (optionally capped: ``max_queued_requests``, beyond which a request is
  rejected at once, Serve's 503), which a client with a timeout leaves when its wait runs past it;
- each replica batches like ``@serve.batch`` in Ray 2.60 (``serve/batching.py``):
  the batcher opens a batch with the first request it takes and closes it when
  ``max_batch_size`` requests have joined or ``batch_wait_timeout_s`` has passed;
  it does not wait for the GPU, so under steady load closed batches queue (FIFO,
  ``max_concurrent_batches`` = 1) and stay small;
- replica lifecycle: pending node -> starting (model load) -> running ->
  draining (no new requests, finishes what it holds) -> released; a spot
  replica is drained at its interruption warning and killed (its requests
  dropped) when the warning runs out.

Because a request that waits in the router queue only ever leaves it in FIFO
order, and new arrivals join that queue whenever it is non-empty, the queue is
always the arrival-index range [RQ_HEAD, next arrival) minus dropped requests:
it needs no buffer of its own. Every request has the same client timeout, so the ones that give up are
always the oldest: abandonment leaves from the head too, and is applied whenever the queue is looked at (an
arrival, a pull, the end of a window), which is exact for every decision the queue takes part in.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.inf

# Replica states.
FREE, PENDING, STARTING, RUNNING, DRAINING = 0, 1, 2, 3, 4

# Columns of rf (float64 per replica slot).
# BATCH_DUE: when the open batch closes (its first request's time + batch_wait_timeout_s).
T_LIFE, T_WARN, T_KILL, BUSY_UNTIL, BATCH_DUE, RELEASED_T, LOAD_S = 0, 1, 2, 3, 4, 5, 6
NRF = 7
# Columns of ri (int64 per replica slot).
STATE, POOL, QHEAD, QLEN, BN, RUN_POS, KILLED, RID, FHEAD, FLEN, OPEN_N = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
NRI = 11
# Columns of pf (float64 per pool).
FIXED_MS, PER_ITEM_MS, PER_TOKEN_MS, TIMEOUT_S, NOISE_SIGMA, MAX_TOKENS = 0, 1, 2, 3, 4, 5
NPF = 6
# Columns of pi (int64 per pool).
BATCH, MAX_ONGOING, ONGOING = 0, 1, 2
NPI = 3
# Columns of acc (float64 per pool, window accumulators reset by the caller).
ONGOING_INT, LAST_T, BATCHES, BATCH_ITEMS = 0, 1, 2, 3
NACC = 4
# Global ints g.
# DROP_N counts requests lost (killed with their replica, or rejected at the cap), REJECT_N the rejected
# ones alone, TIMEOUT_N the ones abandoned by their client in the router queue.
NEXT_ARR, RQ_HEAD, RQ_LEN, DONE_N, DROP_N, N_RUN, GIDX, MAX_QUEUED, HIGH, REJECT_N, TIMEOUT_N = range(11)
NG = 11
# Global floats gf; after them, from NGF on, each slot's next event time, kept
# contiguous so that finding the earliest is a short linear scan.
# CLIENT_TO: how long a request may wait from reaching the router before its client gives up (inf: never).
GMIN, RQ_INT, RQ_LAST_T, CLIENT_TO = 0, 1, 2, 3
NGF = 4

# Request status.
WAITING, DONE, DROPPED, TIMED_OUT = 0, 1, 2, 3


@njit(cache=True, error_model="numpy", inline="always")
def _rand(rng: np.ndarray) -> np.uint64:
    # xorshift64*: tiny, fast, and its state is this simulator's own.
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return x * np.uint64(2685821657736338717)


@njit(cache=True, error_model="numpy", inline="always")
def _lognormal_noise(rng: np.ndarray, sigma: float) -> float:
    """Mean-one log-normal multiplier.

    The normal deviate is the Irwin-Hall sum of four 16-bit uniforms from one draw
    (variance-scaled): a third of the cost of Box-Muller, on the hot path once per
    batch, and its tails stop at 3.5 sigma, as a GPU's batch times do.
    """
    if sigma <= 0.0:
        return 1.0
    x = _rand(rng)
    m = np.uint64(0xFFFF)
    s = (x & m) + ((x >> np.uint64(16)) & m) + ((x >> np.uint64(32)) & m) + (x >> np.uint64(48))
    z = (float(s) * (1.0 / 65536.0) - 2.0) * 1.7320508075688772  # sqrt(12 / 4)
    return np.exp(sigma * z - 0.5 * sigma * sigma)


@njit(cache=True, error_model="numpy", inline="always")
def _refresh(r, rf, g, gf):
    """Recompute replica r's next event time and the global minimum."""
    t = min(rf[r, T_LIFE], rf[r, T_WARN], rf[r, T_KILL], rf[r, BUSY_UNTIL], rf[r, BATCH_DUE])
    gf[NGF + r] = t
    if t < gf[GMIN]:
        gf[GMIN] = t
        g[GIDX] = r
    elif g[GIDX] == r and t > gf[GMIN]:
        best = INF
        bi = -1
        # Slots above the high-water mark have never held a replica: nothing to scan.
        for k in range(g[HIGH]):
            if gf[NGF + k] < best:
                best = gf[NGF + k]
                bi = k
        gf[GMIN] = best
        g[GIDX] = bi


@njit(cache=True, error_model="numpy", inline="always")
def _pool_ongoing_add(p, delta, t, pi, acc):
    acc[p, ONGOING_INT] += (t - acc[p, LAST_T]) * pi[p, ONGOING]
    acc[p, LAST_T] = t
    pi[p, ONGOING] += delta


@njit(cache=True, error_model="numpy", inline="always")
def _rq_add(delta, t, g, gf):
    gf[RQ_INT] += (t - gf[RQ_LAST_T]) * g[RQ_LEN]
    gf[RQ_LAST_T] = t
    g[RQ_LEN] += delta


@njit(cache=True, error_model="numpy")  # not inlined: called only with a timeout set, it stays off the hot loop
def _expire(t, route_t, status, g, gf):
    """Requests at the head of the router queue whose client timeout passed before ``t`` leave it."""
    to = gf[CLIENT_TO]
    while g[RQ_LEN] > 0:
        i = g[RQ_HEAD]
        while status[i] == DROPPED:
            i += 1
        g[RQ_HEAD] = i
        due = route_t[i] + to
        if due >= t:
            return
        status[i] = TIMED_OUT
        g[TIMEOUT_N] += 1
        g[RQ_HEAD] = i + 1
        _rq_add(-1, t, g, gf)
        # It left at its deadline, not now: take back the queue time counted since (the deadline is in this
        # window, since the end of every window expires what is due by then).
        gf[RQ_INT] -= t - due


@njit(cache=True, error_model="numpy", inline="always")
def _start_batch(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, acc, rng):
    """Put the oldest closed batch on the GPU."""
    p = ri[r, POOL]
    fmask = fbuf.shape[1] - 1
    n = fbuf[r, ri[r, FHEAD]]
    ri[r, FHEAD] = (ri[r, FHEAD] + 1) & fmask
    ri[r, FLEN] -= 1
    head = ri[r, QHEAD]
    mask = qbuf.shape[1] - 1  # ring capacities are powers of two
    longest = 0.0
    for k in range(n):
        i = qbuf[r, (head + k) & mask]
        bbuf[r, k] = i
        start_t[i] = t
        if tokens[i] > longest:
            longest = tokens[i]
    ri[r, QHEAD] = (head + n) & mask
    ri[r, QLEN] -= n
    ri[r, BN] = n
    if pf[p, MAX_TOKENS] > 0.0:
        longest = min(longest, pf[p, MAX_TOKENS])
    else:
        longest = 0.0
    ms = pf[p, FIXED_MS] + n * (pf[p, PER_ITEM_MS] + pf[p, PER_TOKEN_MS] * longest)
    rf[r, BUSY_UNTIL] = t + ms * 1e-3 * _lognormal_noise(rng, pf[p, NOISE_SIGMA])
    acc[p, BATCHES] += 1.0
    acc[p, BATCH_ITEMS] += n


@njit(cache=True, error_model="numpy", inline="always")
def _close_batch(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, acc, rng):
    """The batcher hands its open batch to the GPU queue and is free to open the next."""
    fbuf[r, (ri[r, FHEAD] + ri[r, FLEN]) & (fbuf.shape[1] - 1)] = ri[r, OPEN_N]
    ri[r, FLEN] += 1
    ri[r, OPEN_N] = 0
    rf[r, BATCH_DUE] = INF
    if rf[r, BUSY_UNTIL] == INF:
        _start_batch(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, acc, rng)


@njit(cache=True, error_model="numpy", inline="always")
def _assign(r, i, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, acc, rng):
    """A request reaches replica r and joins its open batch (``@serve.batch``'s wait_for_batch)."""
    qbuf[r, (ri[r, QHEAD] + ri[r, QLEN]) & (qbuf.shape[1] - 1)] = i
    ri[r, QLEN] += 1
    p = ri[r, POOL]
    _pool_ongoing_add(p, 1, t, pi, acc)
    if ri[r, OPEN_N] == 0:
        rf[r, BATCH_DUE] = t + pf[p, TIMEOUT_S]
    ri[r, OPEN_N] += 1
    if ri[r, OPEN_N] >= pi[p, BATCH] or rf[r, BATCH_DUE] <= t:
        _close_batch(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, acc, rng)


@njit(cache=True, error_model="numpy", inline="always")
def _ongoing(r, ri):
    return ri[r, QLEN] + ri[r, BN]


@njit(cache=True, error_model="numpy", inline="always")
def _pick_replica(ri, pi, run, g, rng):
    """Power of two choices on ongoing requests among running replicas with room."""
    n = g[N_RUN]
    if n == 0:
        return -1
    # One 64-bit draw gives both picks; Lemire's multiply-shift maps each 32-bit half
    # onto [0, n) without a division.
    x = _rand(rng)
    a = run[((x >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)]
    best = a
    if n > 1:
        j = ((x & np.uint64(0xFFFFFFFF)) * np.uint64(n - 1)) >> np.uint64(32)
        b = run[j]
        if b == a:
            b = run[n - 1]
        if _ongoing(b, ri) < _ongoing(a, ri):
            best = b
    if _ongoing(best, ri) < pi[ri[best, POOL], MAX_ONGOING]:
        return best
    # Both samples full: Ray's router resamples; the least loaded with room is
    # where that ends up.
    best = -1
    least = 1 << 62
    for k in range(n):
        r = run[k]
        o = _ongoing(r, ri)
        if o < pi[ri[r, POOL], MAX_ONGOING] and o < least:
            least = o
            best = r
    return best


@njit(cache=True, error_model="numpy", inline="always")
def _pull_from_router(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, status, acc, g, gf, rng, route_t):
    p = ri[r, POOL]
    if g[RQ_LEN] > 0 and gf[CLIENT_TO] < INF:
        _expire(t, route_t, status, g, gf)
    while g[RQ_LEN] > 0 and _ongoing(r, ri) < pi[p, MAX_ONGOING]:
        i = g[RQ_HEAD]
        while status[i] == DROPPED:
            i += 1
        g[RQ_HEAD] = i + 1
        _rq_add(-1, t, g, gf)
        _assign(r, i, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, acc, rng)


@njit(cache=True, error_model="numpy", inline="always")
def _remove_running(r, ri, run, g):
    pos = ri[r, RUN_POS]
    last = run[g[N_RUN] - 1]
    run[pos] = last
    ri[last, RUN_POS] = pos
    g[N_RUN] -= 1
    ri[r, RUN_POS] = -1


@njit(cache=True, error_model="numpy", inline="always")
def _release(r, t, rf, ri):
    ri[r, STATE] = FREE
    rf[r, RELEASED_T] = t
    rf[r, T_LIFE] = INF
    rf[r, T_WARN] = INF
    rf[r, T_KILL] = INF
    rf[r, BUSY_UNTIL] = INF
    rf[r, BATCH_DUE] = INF


@njit(cache=True, error_model="numpy")
def drain_replica(r, t, rf, ri, run, g, gf):
    """Stop sending to replica r; release it now if it holds nothing."""
    s = ri[r, STATE]
    if s == RUNNING:
        _remove_running(r, ri, run, g)
    if s == PENDING or s == STARTING or (s == RUNNING and _ongoing(r, ri) == 0):
        _release(r, t, rf, ri)
    elif s == RUNNING:
        ri[r, STATE] = DRAINING
        rf[r, T_LIFE] = INF
    _refresh(r, rf, g, gf)


@njit(cache=True, error_model="numpy", inline="always")
def _kill(r, t, rf, ri, pi, qbuf, bbuf, fbuf, status, acc, run, g):
    if ri[r, STATE] == RUNNING:
        _remove_running(r, ri, run, g)
    mask = qbuf.shape[1] - 1
    lost = ri[r, BN] + ri[r, QLEN]
    for k in range(ri[r, BN]):
        status[bbuf[r, k]] = DROPPED
    for k in range(ri[r, QLEN]):
        status[qbuf[r, (ri[r, QHEAD] + k) & mask]] = DROPPED
    if lost > 0:
        _pool_ongoing_add(ri[r, POOL], -lost, t, pi, acc)
    g[DROP_N] += lost
    ri[r, BN] = 0
    ri[r, QLEN] = 0
    ri[r, FLEN] = 0
    ri[r, OPEN_N] = 0
    ri[r, KILLED] = 1
    _release(r, t, rf, ri)


@njit(cache=True, error_model="numpy", inline="always")
def _lifecycle(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, status, acc, run, g, gf, rng, route_t):
    if ri[r, STATE] == PENDING:
        ri[r, STATE] = STARTING
        rf[r, T_LIFE] = t + rf[r, LOAD_S]
    elif ri[r, STATE] == STARTING:
        ri[r, STATE] = RUNNING
        rf[r, T_LIFE] = INF
        ri[r, RUN_POS] = g[N_RUN]
        run[g[N_RUN]] = r
        g[N_RUN] += 1
        _pull_from_router(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, status, acc, g, gf, rng, route_t)


@njit(cache=True, error_model="numpy")
def start_replica(r, rid, t, pool, node_ready_s, load_s, warn_s, kill_s,
                  rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, status, acc, run, g, gf, rng, route_t):
    """Put a new replica of ``pool`` in slot r; it runs once its node is ready and the model loaded."""
    ri[r, STATE] = PENDING
    ri[r, POOL] = pool
    ri[r, RID] = rid
    g[HIGH] = max(g[HIGH], r + 1)
    ri[r, QHEAD] = 0
    ri[r, QLEN] = 0
    ri[r, BN] = 0
    ri[r, FHEAD] = 0
    ri[r, FLEN] = 0
    ri[r, OPEN_N] = 0
    ri[r, RUN_POS] = -1
    ri[r, KILLED] = 0
    rf[r, T_LIFE] = node_ready_s
    rf[r, LOAD_S] = load_s
    rf[r, T_WARN] = warn_s
    rf[r, T_KILL] = kill_s
    rf[r, BUSY_UNTIL] = INF
    rf[r, BATCH_DUE] = INF
    rf[r, RELEASED_T] = -1.0
    while ri[r, STATE] != RUNNING and rf[r, T_LIFE] <= t:
        _lifecycle(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, status, acc, run, g, gf, rng, route_t)
    _refresh(r, rf, g, gf)


@njit(cache=True, error_model="numpy", inline="always")
def _replica_event(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, finish_t, served, status, done_idx,
                   acc, run, g, gf, rng, route_t):
    if rf[r, T_KILL] <= t:
        _kill(r, t, rf, ri, pi, qbuf, bbuf, fbuf, status, acc, run, g)
    elif rf[r, BUSY_UNTIL] <= t:
        n = ri[r, BN]
        for k in range(n):
            i = bbuf[r, k]
            finish_t[i] = t
            served[i] = ri[r, RID]
            status[i] = DONE
            done_idx[g[DONE_N]] = i
            g[DONE_N] += 1
        ri[r, BN] = 0
        rf[r, BUSY_UNTIL] = INF
        _pool_ongoing_add(ri[r, POOL], -n, t, pi, acc)
        if ri[r, FLEN] > 0:
            _start_batch(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, acc, rng)
        if ri[r, STATE] == RUNNING:
            _pull_from_router(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, status, acc, g, gf, rng, route_t)
        if ri[r, STATE] == DRAINING and _ongoing(r, ri) == 0:
            _release(r, t, rf, ri)
    elif rf[r, T_LIFE] <= t:
        _lifecycle(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, status, acc, run, g, gf, rng, route_t)
    elif rf[r, T_WARN] <= t:
        rf[r, T_WARN] = INF
        drain_replica(r, t, rf, ri, run, g, gf)
    elif rf[r, BATCH_DUE] <= t:
        _close_batch(r, t, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, acc, rng)
    _refresh(r, rf, g, gf)


@njit(cache=True, error_model="numpy")
def run_until(t_end, arr_t, tokens, start_t, finish_t, served, status, done_idx,
              rf, ri, pf, pi, qbuf, bbuf, fbuf, acc, run, g, gf, rng):
    """Process every event up to and including time ``t_end``."""
    n_arr = arr_t.shape[0]
    while True:
        ia = g[NEXT_ARR]
        ta = arr_t[ia] if ia < n_arr else INF
        tr = gf[GMIN]
        if tr <= ta:
            if tr > t_end:
                break
            _replica_event(g[GIDX], tr, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, finish_t, served, status,
                           done_idx, acc, run, g, gf, rng, arr_t)
        else:
            if ta > t_end:
                break
            if g[RQ_LEN] > 0 and gf[CLIENT_TO] < INF:
                _expire(ta, arr_t, status, g, gf)
            g[NEXT_ARR] = ia + 1
            if g[RQ_LEN] == 0:
                r = _pick_replica(ri, pi, run, g, rng)
                if r >= 0:
                    # Only opening or closing a batch changes the replica's next event.
                    opening = ri[r, OPEN_N] == 0
                    _assign(r, ia, ta, rf, ri, pf, pi, qbuf, bbuf, fbuf, tokens, start_t, acc, rng)
                    if opening or ri[r, OPEN_N] == 0:
                        _refresh(r, rf, g, gf)
                    continue
                g[RQ_HEAD] = ia
            if g[MAX_QUEUED] >= 0 and g[RQ_LEN] >= g[MAX_QUEUED]:
                status[ia] = DROPPED
                g[DROP_N] += 1
                g[REJECT_N] += 1
                if g[RQ_LEN] == 0:
                    g[RQ_HEAD] = ia + 1
            else:
                _rq_add(1, ta, g, gf)
    if g[RQ_LEN] > 0 and gf[CLIENT_TO] < INF:
        _expire(t_end, arr_t, status, g, gf)


@njit(cache=True, error_model="numpy")
def window_latencies(done_idx, lo, hi, arr_t, finish_t, slo_ms, out):
    """Latencies (ms, float32) of the requests finished in a window; returns how many were on time."""
    on_time = 0
    for k in range(hi - lo):
        i = done_idx[lo + k]
        v = (finish_t[i] - arr_t[i]) * 1e3
        out[k] = v
        if v <= slo_ms:
            on_time += 1
    return on_time
