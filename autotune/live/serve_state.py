"""The dashboard's Serve REST answer (``GET /api/serve/applications/``) → replica counts per pool.

Pure: takes the decoded JSON, returns plain dataclasses. A replica that Serve
has asked for but Ray has not placed on a node (no ``node_id``: its node is
being provisioned, or no node can take it) counts as *pending*; one placed but not yet serving as
*starting*; ``STOPPING`` as *draining*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STARTING_STATES = ("STARTING", "UPDATING", "RECOVERING")


@dataclass(frozen=True)
class DeploymentState:
    name: str
    target: int
    running: int
    starting: int
    pending: int
    draining: int
    batch_size: int | None
    user_config: Mapping[str, Any]
    pids: tuple[int, ...]
    dead_replicas: tuple[str, ...]
    status: str
    message: str
    pending_ids: tuple[str, ...] = ()  # replica ids of the pending ones (how long each waits is the observer's)
    max_queued: int = -1  # the deployment's max_queued_requests (-1: unbounded, Serve's default)


@dataclass(frozen=True)
class AppState:
    name: str
    status: str
    external_scaler_enabled: bool
    deployments: Mapping[str, DeploymentState]
    # The config the app was deployed with: the base of a declarative update.
    deployed_config: Mapping[str, Any] = field(default_factory=dict)


def deployment_state(name: str, d: Mapping[str, Any]) -> DeploymentState:
    running = starting = pending = draining = 0
    pids: list[int] = []
    waiting: list[str] = []
    for r in d.get("replicas") or ():
        state = r.get("state")
        if state == "RUNNING":
            running += 1
            if r.get("pid"):
                pids.append(int(r["pid"]))
        elif state in STARTING_STATES:
            if r.get("node_id"):
                starting += 1
            else:
                pending += 1
                waiting.append(str(r.get("replica_id") or f"pending-{pending}"))
        elif state in ("STOPPING", "PENDING_MIGRATION"):
            draining += 1
    cfg = d.get("deployment_config") or {}
    uc = cfg.get("user_config") or {}
    batch = uc.get("max_batch_size")
    dead = tuple(str(r.get("replica_id")) for r in d.get("recent_dead_replicas") or ())
    return DeploymentState(
        name=name, target=int(d.get("target_num_replicas", running + starting + pending)),
        running=running, starting=starting, pending=pending, draining=draining,
        batch_size=int(batch) if batch is not None else None, user_config=dict(uc), pids=tuple(sorted(pids)),
        dead_replicas=dead, status=str(d.get("status", "")), message=str(d.get("message", "")),
        pending_ids=tuple(waiting),
        max_queued=int(cfg.get("max_queued_requests", -1)),
    )


def app_state(details: Mapping[str, Any], app: str) -> AppState | None:
    """The app's state, or None when the cluster does not (yet) run it."""
    a = (details.get("applications") or {}).get(app)
    if a is None:
        return None
    deps = {name: deployment_state(name, d) for name, d in (a.get("deployments") or {}).items()}
    return AppState(name=app, status=str(a.get("status", "")),
                    external_scaler_enabled=bool(a.get("external_scaler_enabled", False)),
                    deployments=deps, deployed_config=a.get("deployed_app_config") or {})
