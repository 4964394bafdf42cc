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


def autoscaling_config(sc: Scenario, pool: PoolSpec, mode: Mode, policy: str, ref: str) -> dict[str, Any]:
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
        # Ray applies its delays on top of a custom policy; ours has its own timing.
        cfg.update(upscale_delay_s=0.0, downscale_delay_s=0.0)
        cfg["policy"] = {"policy_function": "autotune.live.ray_policy:AutotunePolicy",
                         "policy_kwargs": {"scenario": ref, "policy": policy, "pool": pool.name}}
    return cfg


def render(sc: Scenario, app_name: str | None = None, mode: Mode = "external", time_factor: float = 1.0,
           backend: str = "emulated", route_prefix: str = "/", policy: str = "hpa",
           use_accelerator_type: bool = False, scenario_ref: str | None = None) -> dict[str, Any]:
    """The ``applications`` entry for one app (wrap in ``{"applications": [...]}`` to deploy).

    ``scenario_ref`` is how replicas find the scenario (a name under envs/ or
    a path on every node); by default the file it was loaded from.
    """
    name = app_name or sc.name
    ref = scenario_ref or sc.source or sc.name
    deployments: list[dict[str, Any]] = [{"name": "router", "num_replicas": 1,
                                          "ray_actor_options": {"num_cpus": 0}}]
    for p in sc.pools:
        d: dict[str, Any] = {
            "name": p.name,
            "max_ongoing_requests": p.max_ongoing_requests,
            "ray_actor_options": actor_options(p, use_accelerator_type),
            "user_config": user_config(p, time_factor=time_factor),
        }
        if sc.pool_max_queued(p) != -1:  # -1 is Serve's default: left out, as a hand-written config would
            d["max_queued_requests"] = sc.pool_max_queued(p)
        if mode == "external":
            # Serve's config schema wants num_replicas >= 1; a pool meant to
            # start empty is scaled to 0 by the controller's first decision.
            d["num_replicas"] = max(1, p.initial)
        else:
            d["autoscaling_config"] = autoscaling_config(sc, p, mode, policy, ref)
        deployments.append(d)
    return {
        "name": name,
        "route_prefix": route_prefix,
        "import_path": "autotune.live.serve_app:app",
        "args": {"scenario": ref, "app_name": name, "backend": backend},
        "external_scaler_enabled": mode == "external",
        "deployments": deployments,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m autotune.live.serve_config --scenario S [--mode M]`` prints a ``serve deploy`` YAML."""
    import argparse
    import sys

    import yaml

    from autotune.scenario import load_scenario

    ap = argparse.ArgumentParser(prog="python -m autotune.live.serve_config", description=main.__doc__)
    ap.add_argument("--scenario", default="live-demo")
    ap.add_argument("--app", help="application name (default: the scenario's)")
    ap.add_argument("--mode", choices=["external", "ray", "ray-policy"], default="external")
    ap.add_argument("--policy", default="hpa", help="policy for --mode ray-policy")
    ap.add_argument("--time-factor", type=float, default=1.0, help="emulated model slow-down")
    ap.add_argument("--backend", default="emulated", help="'emulated' or module:Class of a real model")
    ap.add_argument("--accelerator-type", action="store_true", help="pin pools by accelerator_type (real GPUs)")
    ap.add_argument("--http-port", type=int, default=8000)
    a = ap.parse_args(argv)
    sc = load_scenario(a.scenario)
    ref = a.scenario if "/" not in a.scenario and not a.scenario.endswith(".yaml") else None
    app = render(sc, a.app, a.mode, a.time_factor, a.backend, policy=a.policy,
                 use_accelerator_type=a.accelerator_type, scenario_ref=ref)
    doc = {"http_options": {"host": "127.0.0.1", "port": a.http_port}, "applications": [app]}
    sys.stdout.write(f"# Generated by: python -m autotune.live.serve_config {' '.join(argv or sys.argv[1:])}\n")
    yaml.safe_dump(doc, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
