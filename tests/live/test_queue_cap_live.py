"""The queue cap on a real Serve deployment: set by the actuator in place, read back, and enforced as 503s."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from autotune.core.types import Decision
from autotune.live.actuator import ServeActuator
from autotune.live.http import RetryingClient
from autotune.live.localray import LocalRay
from autotune.live.serve_api import ServeAPI
from autotune.live.serve_config import render
from autotune.live.serve_state import DeploymentState, app_state
from autotune.scenario import load_scenario
from tests.live.conftest import wait_for

pytestmark = pytest.mark.integration

APP = "qcap"


def pool(cluster: LocalRay) -> DeploymentState:
    st = app_state(cluster.details(), APP)
    assert st is not None
    return st.deployments["l4"]


def _statuses(url: str, n: int) -> list[int]:
    async def go() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as c:
            rs = await asyncio.gather(*(c.post(url, json={}) for _ in range(n)))
        return [r.status_code for r in rs]

    return asyncio.run(go())


def test_actuator_sets_max_queued_requests_in_place_and_serve_rejects_beyond_it(ray_cluster: LocalRay) -> None:
    sc = load_scenario("live-demo")
    ray_cluster.deploy(render(sc, app_name=APP, route_prefix="/"))
    before = pool(ray_cluster)
    assert before.max_queued == -1 and before.running == 1
    assert set(_statuses(ray_cluster.http_url, 40)) == {200}  # unbounded: everything queues and is served

    api = ServeAPI(ray_cluster.dashboard_url, RetryingClient(timeout_s=10.0, retries=2, backoff_s=0.5))
    st = api.app(APP)
    assert st is not None
    actions = ServeActuator(api, APP).apply(Decision({"l4": 1}, "cap", max_queued={"l4": 2}), st)
    assert actions == ["max_queued l4: -1 -> 2"]
    assert wait_for(lambda: pool(ray_cluster).max_queued == 2, 30)
    assert wait_for(lambda: pool(ray_cluster).status == "HEALTHY", 30)
    after = pool(ray_cluster)
    assert after.pids == before.pids, "the replica was restarted for a queue-cap change"
    assert after.target == 1

    # The router's handle to l4 holds max_ongoing_requests at the replica and 2 in its queue: the rest get 503.
    codes = _statuses(ray_cluster.http_url, 40)
    assert set(codes) == {200, 503}
    assert codes.count(200) <= sc.pools[0].max_ongoing_requests + 2 + 4  # a few finish while the burst arrives
    # The same decision again changes nothing.
    st = api.app(APP)
    assert st is not None and ServeActuator(api, APP).apply(Decision({"l4": 1}, "cap", max_queued={"l4": 2}), st) == []
