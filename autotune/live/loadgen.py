"""Open-loop HTTP load: replay arrival times on schedule, whatever the server's latency.

Open loop matters: a closed-loop client slows down when the server does and
hides exactly the overload an autoscaler must react to. Each request is sent
at its arrival time (asyncio + aiohttp) and its latency and status recorded.
"""

from __future__ import annotations

import asyncio
import csv
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.workload.arrivals import Arrivals


@dataclass(frozen=True)
class Result:
    arrival_s: float  # scheduled, from the start of the replay
    sent_s: float  # actual send time, from the start
    latency_ms: float  # NaN when the request failed without a response
    status: int  # HTTP status; 0 for a connection error or a timeout
    pool: str = ""


async def _one(session: object, url: str, t: float, tokens: float, start: float, timeout_s: float,
               out: list[Result]) -> None:
    import aiohttp

    assert isinstance(session, aiohttp.ClientSession)
    sent = time.perf_counter()
    try:
        async with session.post(url, json={"tokens": float(tokens)},
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
            body = await r.json(content_type=None) if r.status == 200 else None
            pool = str(body.get("pool", "")) if isinstance(body, dict) else ""
            out.append(Result(t, sent - start, (time.perf_counter() - sent) * 1e3, r.status, pool))
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        out.append(Result(t, sent - start, math.nan, 0))


async def replay_async(url: str, times: Sequence[float], tokens: Sequence[float], timeout_s: float = 30.0,
                       max_connections: int = 500) -> list[Result]:
    import aiohttp

    out: list[Result] = []
    conn = aiohttp.TCPConnector(limit=max_connections)
    async with aiohttp.ClientSession(connector=conn) as session:
        start = time.perf_counter()
        tasks = []
        for t, tok in zip(times, tokens, strict=True):
            delay = start + float(t) - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(session, url, float(t), float(tok), start, timeout_s, out)))
        if tasks:
            await asyncio.gather(*tasks)
    out.sort(key=lambda r: r.arrival_s)
    return out


def replay(url: str, arrivals: Arrivals, timeout_s: float = 30.0) -> list[Result]:
    return asyncio.run(replay_async(url, arrivals.times.tolist(), arrivals.tokens.tolist(), timeout_s))


def write_csv(results: Sequence[Result], path: str | Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arrival_s", "sent_s", "latency_ms", "status", "pool"])
        for r in results:
            w.writerow([f"{r.arrival_s:.4f}", f"{r.sent_s:.4f}",
                        "" if math.isnan(r.latency_ms) else f"{r.latency_ms:.2f}", r.status, r.pool])


def summarize(results: Sequence[Result], slo_ms: float | None = None) -> dict[str, float | int]:
    """Counts, achieved rate, latency percentiles of OK requests, and SLO attainment over all requests."""
    n = len(results)
    ok = np.array([r.latency_ms for r in results if r.status == 200])
    span = max((r.sent_s for r in results), default=0.0)
    p50, p95, p99 = np.percentile(ok, [50, 95, 99]) if ok.size else (math.nan,) * 3
    out: dict[str, float | int] = {"requests": n, "ok": int(ok.size), "failed": n - int(ok.size),
                                   "rate": n / span if span > 0 else math.nan,
                                   "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}
    if slo_ms is not None:
        out["slo_attainment"] = float(np.sum(ok <= slo_ms)) / n if n else math.nan
    return out
