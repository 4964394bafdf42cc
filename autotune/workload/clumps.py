"""Clumped LLM arrivals: the Azure LLM traces' arrival process and token counts, requests arriving in clumps.

The shipped Azure traces have a distinct sub-second timestamp on every request, but LLM frontends deliver
requests in clumps (agents fanning out, several samples of one prompt, a client's retries): in the traces
that motivated this family about 90% of requests share their timestamp with another. This makes a compound
Poisson-like stream: clump epochs follow the Azure trace's own arrivals (looped past its end, thinned or
multiplied to the rate needed, as ``--mean-rate`` does to a request trace), and each epoch brings a clump of
requests with one timestamp, its size Zipf-distributed on 1..``max_clump`` with exponent ``zipf_a``.

With ``zipf_a = 1.65`` and ``max_clump = 64`` a request is alone at its timestamp with probability
``P(S=1) / E[S] = 0.10`` (:func:`shared_fraction`): 90% share it, as observed; the mean clump is 4.9 requests
and one in a hundred clumps has 38 or more, so the tail stays heavy. The requests of a clump take the token
counts of consecutive trace rows from its epoch on, so the trace's token counts (and their drift over the
hour) are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np

from autotune.paths import TRACES
from autotune.workload import synthetic
from autotune.workload.traces import RequestTrace, read_trace

AZURE = {0: TRACES / "azure_llm_conv_2023.csv", 1: TRACES / "azure_llm_code_2023.csv"}
ZIPF_A = 1.65
MAX_CLUMP = 64


@cache
def _trace(code: int) -> RequestTrace:
    tr = read_trace(AZURE[code])
    assert isinstance(tr, RequestTrace)
    return tr


def clump_law(a: float = ZIPF_A, kmax: int = MAX_CLUMP) -> np.ndarray:
    """P(S = k) for k = 1..kmax."""
    k = np.arange(1, kmax + 1, dtype=np.float64)
    w = k**-a
    return w / w.sum()


def shared_fraction(a: float = ZIPF_A, kmax: int = MAX_CLUMP) -> float:
    """The expected fraction of requests that share their timestamp with another."""
    p = clump_law(a, kmax)
    return float(1.0 - p[0] / (np.arange(1, kmax + 1) * p).sum())


def sample(mean: float, duration_s: float, p: Mapping[str, float],
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """``mean`` req/s for ``duration_s`` of clumped Azure arrivals; ``code=1`` for the code trace (0: conversation)."""
    tr = _trace(int(p.get("code", 0)))
    a, kmax = p.get("zipf_a", ZIPF_A), int(p.get("max_clump", MAX_CLUMP))
    law = clump_law(a, kmax)
    mean_clump = float((np.arange(1, kmax + 1) * law).sum())
    # Loop the trace past its end: it covers its last request plus one mean gap, like a replay.
    gap = tr.arrival_s[-1] / (tr.arrival_s.size - 1)
    span = float(tr.arrival_s[-1] + gap)
    loops = int(np.ceil(duration_s / span))
    t = np.concatenate([tr.arrival_s + i * span for i in range(loops)])
    rows = np.tile(np.arange(tr.arrival_s.size), loops)
    keep = t < duration_s
    t, rows = t[keep], rows[keep]
    factor = mean * duration_s / mean_clump / max(t.size, 1)
    t, rows = synthetic.scale_requests(t, rows, factor, rng)
    size = rng.choice(np.arange(1, kmax + 1), size=t.size, p=law)
    times = np.repeat(t, size)
    first = np.repeat(np.cumsum(size) - size, size)
    offset = np.arange(times.size) - first
    tokens = tr.tokens[(np.repeat(rows, size) + offset) % tr.tokens.size]
    keep = times < duration_s
    return times[keep], tokens[keep].astype(np.float32)
