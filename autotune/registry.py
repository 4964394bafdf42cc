"""Turn a policy name (or file) from the command line into a :class:`Policy`.

Policies size fleets with a :class:`~autotune.policies.sizing.Capacity` they are handed; here is where it is
measured (with the simulator) when the caller does not pass one in.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from autotune.core.types import Policy
from autotune.errors import InputError
from autotune.paths import POLICIES
from autotune.policies.burst import make_burst
from autotune.policies.crowd import split_floor, with_crowd_floor
from autotune.policies.headroom import DEFAULT_HEADROOM, make_headroom
from autotune.policies.hpa import HPAPolicy
from autotune.policies.overload import split_shed, with_queue_caps
from autotune.policies.predictive import make_predictive
from autotune.policies.ray_default import RayDefaultPolicy
from autotune.policies.sizing import Capacity
from autotune.policies.static import StaticPolicy
from autotune.scenario import RayAutoscalerSpec, Scenario
from autotune.sim.capacity import measure_capacity

BUILTIN = ("static", "ray-default", "ray-tuned", "hpa", "headroom", "burst", "predictive")


def _static(spec: str, scenario: Scenario) -> StaticPolicy:
    """``static`` (the scenario's initial fleet), ``static:N`` (N in every pool) or ``static:a=N,b=M``."""
    replicas = {p.name: p.initial for p in scenario.pools}
    _, _, arg = spec.partition(":")
    if arg:
        for part in arg.split(","):
            name, eq, value = part.rpartition("=")
            targets = [name] if eq else list(replicas)
            try:
                n = int(value)
            except ValueError:
                raise InputError("command line", "--policy", f"bad static fleet {spec!r}") from None
            for t in targets:
                if t not in replicas:
                    raise InputError("command line", "--policy", f"no pool {t!r} in scenario {scenario.name}")
                replicas[t] = n
    return StaticPolicy(replicas, {p.name: p.batch_size for p in scenario.pools}, name=spec)


def ray_tuned_path(scenario: Scenario) -> Path:
    return POLICIES / f"{scenario.name}-ray-tuned.json"


def _ray_tuned(scenario: Scenario) -> RayDefaultPolicy:
    path = ray_tuned_path(scenario)
    if not path.exists():
        raise InputError(path, None, f"no tuned Ray config for scenario {scenario.name}; run `autotune tune` first")
    try:
        cfg = RayAutoscalerSpec(**json.loads(path.read_text())["ray_autoscaler"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(path, "ray_autoscaler", f"unreadable ({e})") from None
    except ValidationError as e:
        raise InputError(path, "ray_autoscaler", str(e.errors()[0]["msg"])) from None
    return RayDefaultPolicy(tuple(scenario.pools), cfg, name="ray-tuned")


def make_policy(spec: str, scenario: Scenario, capacity: Capacity | None = None) -> Policy:
    """A policy by name: static[:fleet], ray-default, ray-tuned, hpa, headroom/burst/predictive[:M], or a zip;
    any of them with ``+crowd:K`` holds at least the fleet a K x surge of the calm load needs, and with
    ``+hold:K`` that fleet and no more while it carries the load that came; with ``+shed`` (written last) every
    pool's queue cap follows its running replicas, so that what it queues is served within the SLO."""
    if capacity is None:
        capacity = measure_capacity(scenario)
    inner, shed = split_shed(spec)
    if shed:
        if not inner:
            raise InputError("command line", "--policy", f"bad queue shedding {spec!r} (POLICY+shed)")
        return with_queue_caps(make_policy(inner, scenario, capacity), scenario, capacity, spec)
    inner, mark, factor = split_floor(spec)
    if mark:
        try:
            k = float(factor)
        except ValueError:
            k = -1.0
        if not 1 <= k <= 100 or not inner:
            raise InputError("command line", "--policy",
                             f"bad crowd floor {spec!r} (POLICY{mark}K with 1 <= K <= 100)")
        return with_crowd_floor(make_policy(inner, scenario, capacity), scenario, capacity, k, spec,
                                hold=mark == "+hold:")
    if spec == "static" or spec.startswith("static:"):
        return _static(spec, scenario)
    if spec == "ray-default":
        return RayDefaultPolicy(tuple(scenario.pools), scenario.ray_autoscaler)
    if spec == "ray-tuned":
        return _ray_tuned(scenario)
    if spec == "hpa":
        return HPAPolicy(tuple(scenario.pools), scenario.ray_autoscaler.target_ongoing_requests)
    rules = (("headroom", make_headroom, DEFAULT_HEADROOM), ("burst", make_burst, DEFAULT_HEADROOM),
             ("predictive", make_predictive, 1.0))  # predictive learns its margin: M is on top of it
    for kind, make, default in rules:
        if spec == kind or spec.startswith(kind + ":"):
            _, _, arg = spec.partition(":")
            try:
                m = float(arg) if arg else default
            except ValueError:
                m = -1.0
            if not 0 < m <= 100:
                raise InputError("command line", "--policy", f"bad headroom {spec!r} ({kind}:M with 0 < M <= 100)")
            return make(scenario, capacity, m, spec)
    if spec.endswith(".zip"):
        from autotune.rl.policy import load_policy  # torch only when a trained policy is asked for

        return load_policy(spec, scenario, capacity)
    if spec == "oracle":
        raise InputError("command line", "--policy", "oracle is always reported as a bound; no need to ask for it")
    raise InputError("command line", "--policy", f"unknown policy {spec!r} (known: {', '.join(BUILTIN)}, or a .zip)")
