"""Render the Serve declarative config (``serve deploy`` YAML) for a scenario.

Two modes share everything but scaling: ``external`` (``external_scaler_enabled``,
fixed ``num_replicas`` that autotune then changes through the scale API) and
``ray`` (Ray Serve's built-in autoscaler with the scenario's ``ray_autoscaler``
knobs, or an autotune policy run inside Serve through
:mod:`autotune.live.ray_policy`).
"""

from __future__ import annotations

from typing import Any, Literal

from autotune.scenario import PoolSpec, Scenario

Mode = Literal["external", "ray", "ray-policy"]


def actor_options(pool: PoolSpec, use_accelerator_type: bool = False) -> dict[str, Any]:
    """One GPU per replica, pinned to the pool's instance type.

    A fake local cluster declares the instance as a custom resource
    (``--resources '{"L4": 8}'``); a real GPU cluster can use Ray's
    ``accelerator_type`` instead. ``num_cpus: 0`` keeps CPUs from capping replicas.
    """
    opts: dict[str, Any] = {"num_cpus": 0, "num_gpus": 1}
    if use_accelerator_type:
        opts["accelerator_type"] = pool.instance
    else:
        opts["resources"] = {pool.instance: 1}
    return opts


def user_config(pool: PoolSpec, batch_size: int | None = None, time_factor: float = 1.0) -> dict[str, Any]:
    return {"max_batch_size": int(batch_size or pool.batch_size),
            "batch_wait_timeout_s": pool.batch_wait_timeout_s, "time_factor": time_factor}


def autoscaling_config(sc: Scenario, pool: PoolSpec, mode: Mode, policy: str) -> dict[str, Any]:
    ra = sc.ray_autoscaler
    cfg: dict[str, Any] = {
        "min_replicas": pool.min_replicas, "max_replicas": pool.max_replicas, "initial_replicas": pool.initial,
        "target_ongoing_requests": ra.target_ongoing_requests, "upscale_delay_s": ra.upscale_delay_s,
        "downscale_delay_s": ra.downscale_delay_s, "look_back_period_s": ra.look_back_period_s,
    }
    if ra.upscaling_factor is not None:
        cfg["upscaling_factor"] = ra.upscaling_factor
    if ra.downscaling_factor is not None:
        cfg["downscaling_factor"] = ra.downscaling_factor
    if mode == "ray-policy":
        cfg["policy"] = {"policy_function": "autotune.live.ray_policy:AutotunePolicy",
                         "policy_kwargs": {"scenario": sc.source or sc.name, "policy": policy, "pool": pool.name}}
    return cfg


def render(sc: Scenario, app_name: str | None = None, mode: Mode = "external", time_factor: float = 1.0,
           backend: str = "emulated", route_prefix: str = "/", policy: str = "hpa",
           use_accelerator_type: bool = False) -> dict[str, Any]:
    """The ``applications`` entry for one app (wrap in ``{"applications": [...]}`` to deploy)."""
    name = app_name or sc.name
    deployments: list[dict[str, Any]] = [{"name": "router", "num_replicas": 1,
                                          "ray_actor_options": {"num_cpus": 0}}]
    for p in sc.pools:
        d: dict[str, Any] = {
            "name": p.name,
            "max_ongoing_requests": p.max_ongoing_requests,
            "ray_actor_options": actor_options(p, use_accelerator_type),
            "user_config": user_config(p, time_factor=time_factor),
        }
        if mode == "external":
            d["num_replicas"] = p.initial
        else:
            d["autoscaling_config"] = autoscaling_config(sc, p, mode, policy)
        deployments.append(d)
    return {
        "name": name,
        "route_prefix": route_prefix,
        "import_path": "autotune.live.serve_app:app",
        "args": {"scenario": sc.source or sc.name, "app_name": name, "backend": backend},
        "external_scaler_enabled": mode == "external",
        "deployments": deployments,
    }
