"""The Ray Serve application autotune drives: one batched model deployment per pool, plus a router.

Deploy with ``serve deploy serve_configs/<file>.yaml`` (import path
``autotune.live.serve_app:app``). The app builder takes the scenario and builds
one ``BatchedModel`` deployment named after each pool; the declarative config
then sets each deployment's resources, replicas and ``user_config``.

``user_config`` (``max_batch_size``, ``batch_wait_timeout_s``, ``time_factor``)
is applied by ``reconfigure``, which Serve calls in place on a config update:
the batch size changes without restarting a replica.

The model is either emulated (sleeps for the scenario's batch service time ×
``time_factor``, one batch at a time like a GPU) or a user class
``module:Class`` with ``predict(items: list) -> list`` (see
``serve_configs/real-model.yaml``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import random
import time
from typing import Any

from ray import serve
from starlette.requests import Request

from autotune.scenario import load_scenario

DEFAULT_BATCH = 8
DEFAULT_WAIT_S = 0.005
STATUS_REFRESH_S = 1.0


@serve.deployment
class BatchedModel:
    def __init__(self, pool: str, backend: str, profile: dict[str, float]) -> None:
        self.pool = pool
        self.profile = profile
        self.time_factor = 1.0
        self.max_batch_size = DEFAULT_BATCH
        self.model: Any = None
        if backend != "emulated":
            module, _, cls = backend.partition(":")
            self.model = getattr(importlib.import_module(module), cls)()

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        # set_max_batch_size / set_batch_wait_timeout_s change the live batch
        # queue, so a new batch size needs no replica restart.
        self.max_batch_size = int(user_config.get("max_batch_size", DEFAULT_BATCH))
        self.infer.set_max_batch_size(self.max_batch_size)
        self.infer.set_batch_wait_timeout_s(float(user_config.get("batch_wait_timeout_s", DEFAULT_WAIT_S)))
        self.time_factor = float(user_config.get("time_factor", self.time_factor))

    def _service_s(self, items: list[dict[str, Any]]) -> float:
        p = self.profile
        longest = max((float(i.get("tokens", 0)) for i in items), default=0.0)
        tok = min(longest, p["max_tokens"]) if p["max_tokens"] else 0.0
        ms = p["fixed_ms"] + len(items) * (p["per_item_ms"] + p["per_token_ms"] * tok)
        sigma = p["noise_sigma"]
        noise = math.exp(random.gauss(-sigma * sigma / 2, sigma)) if sigma > 0 else 1.0  # mean-one log-normal
        return ms * noise * self.time_factor / 1e3

    @serve.batch(max_batch_size=DEFAULT_BATCH, batch_wait_timeout_s=DEFAULT_WAIT_S)
    async def infer(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.model is None:
            # Emulated GPU: one batch at a time (serve.batch runs one batch per replica).
            await asyncio.sleep(self._service_s(items))
            outputs: list[Any] = [None] * len(items)
        else:
            outputs = await asyncio.to_thread(self.model.predict, items)
        meta = {"pool": self.pool, "pid": os.getpid(), "batch": len(items), "max_batch_size": self.max_batch_size}
        return [{**meta, "output": o} for o in outputs]

    async def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        return await self.infer(item)


@serve.deployment(max_ongoing_requests=1000)
class Router:
    """Ingress: sends each request to the pool with the most free capacity.

    Free capacity = running replicas × max_ongoing_requests − requests this
    router has in flight there; replica counts come from the Serve controller,
    refreshed every second (only when there is more than one pool). A pool with no
    running replica gets nothing while another has room.
    """

    def __init__(self, app_name: str, max_ongoing: dict[str, int], **handles: Any) -> None:
        self.app_name = app_name
        self.handles = handles
        self.max_ongoing = max_ongoing
        self.replicas = {name: 1 for name in handles}
        self.inflight = {name: 0 for name in handles}
        self._refreshed = -math.inf
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        if len(self.handles) < 2 or time.monotonic() - self._refreshed < STATUS_REFRESH_S:
            return
        # One fetch at a time; requests arriving meanwhile wait for its counts
        # rather than routing on stale ones (to a pool just scaled to zero).
        async with self._lock:
            if time.monotonic() - self._refreshed < STATUS_REFRESH_S:
                return
            try:
                status = await asyncio.to_thread(serve.status)
                deps = status.applications[self.app_name].deployments
                for name in self.handles:
                    states = deps[name].replica_states if name in deps else {}
                    self.replicas[name] = int(states.get("RUNNING", 0))
            except Exception:  # noqa: BLE001 - routing must go on with the last counts
                pass
            self._refreshed = time.monotonic()

    def pick(self) -> str:
        def free(name: str) -> float:
            return self.replicas[name] * self.max_ongoing[name] - self.inflight[name]

        return max(self.handles, key=lambda n: (free(n), -self.inflight[n]))

    async def __call__(self, request: Request) -> dict[str, Any]:
        await self._refresh()
        item: dict[str, Any] = {}
        if request.method == "POST":
            body = await request.body()
            if body:
                item = json.loads(body)
        name = self.pick()
        self.inflight[name] += 1
        try:
            return await self.handles[name].remote(item)
        finally:
            self.inflight[name] -= 1


def _profile(pool_runtime: Any) -> dict[str, float]:
    r = pool_runtime
    return {"fixed_ms": r.fixed_ms, "per_item_ms": r.per_item_ms, "per_token_ms": r.per_token_ms,
            "max_tokens": float(r.max_tokens), "noise_sigma": r.noise_sigma}


def app(args: dict[str, Any]) -> serve.Application:
    """Application builder: ``args`` = {scenario, app_name, backend (default ``emulated``)}."""
    sc = load_scenario(args["scenario"])
    backend = str(args.get("backend", "emulated"))
    handles = {}
    for rt in sc.runtime_pools():
        handles[rt.name] = BatchedModel.options(name=rt.name).bind(rt.name, backend, _profile(rt))
    max_ongoing = {p.name: p.max_ongoing_requests for p in sc.pools}
    return Router.options(name="router").bind(str(args.get("app_name", sc.name)), max_ongoing, **handles)
