"""Scenario files: model, instance pools, SLO, workload and limits (YAML + pydantic)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autotune.errors import InputError
from autotune.paths import CATALOG, ENVS, ROOT


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstanceType(_Strict):
    aws_instance: str
    on_demand_usd_per_hour: float = Field(gt=0)
    spot_usd_per_hour: float = Field(gt=0)
    mlperf_resnet50_offline: float = Field(gt=0, description="Relative GPU speed source")
    provision_s: float = Field(ge=0, description="Node request to Ray node ready")


class ModelProfile(_Strict):
    task: str
    fixed_ms: float = Field(ge=0)
    per_item_ms: float = Field(ge=0)
    per_token_ms: float = Field(ge=0)
    max_tokens: int = Field(ge=0)
    noise_sigma: float = Field(ge=0, le=1)
    load_s: float = Field(ge=0, description="Replica start on a ready node")


REFERENCE_GPU = "T4"


class ServiceProfile(_Strict):
    """A pool's measured service time (``autotune calibrate``), used instead of the catalog model's on this pool.

    ``batch_ms = fixed_ms + batch_size * (per_item_ms + per_token_ms * tokens)``: per-item time on this pool's
    GPU as measured, not the reference GPU's (no speed division). Unset fields keep the catalog's.
    """

    fixed_ms: float = Field(ge=0, description="Per-batch time, ms")
    per_item_ms: float = Field(ge=0, description="Time per request in the batch on this pool's GPU, ms")
    noise_sigma: float | None = Field(default=None, ge=0, le=1, description="Log-normal sigma of batch time")
    load_s: float | None = Field(default=None, ge=0, description="Replica start on a ready node, s")


class SLO(_Strict):
    latency_ms: float = Field(gt=0, description="A request finished within this is on time")
    target: float = Field(gt=0, le=1, description="Fraction of requests that must be on time")


def _check_queue_cap(v: int | None) -> int | None:
    if v is not None and v < 1 and v != -1:
        raise ValueError("max_queued_requests must be -1 (no limit) or a positive integer, as in Ray Serve")
    return v


class PoolSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    instance: str
    spot: bool = False
    min_replicas: int = Field(ge=0)
    max_replicas: int = Field(ge=1)
    initial_replicas: int | None = Field(default=None, ge=0)
    batch_sizes: list[int] = Field(min_length=1)
    batch_size: int = Field(ge=1, description="Initial max_batch_size")
    batch_wait_timeout_s: float = Field(ge=0)
    max_ongoing_requests: int = Field(ge=1)
    max_queued_requests: int | None = Field(default=None, description="Requests the deployment's handle "
                                            "queues before rejecting (503); -1: unbounded; default: the "
                                            "scenario's max_queued_requests")
    preemption_rate_per_hour: float = Field(default=0.0, ge=0, description="Spot only")
    provision_s: float | None = Field(default=None, ge=0, description="Node provisioning delay; default: the "
                                      "instance catalog's (0 where the GPUs are already up, as on a local cluster)")
    service: ServiceProfile | None = Field(default=None, description="Measured service time on this pool "
                                           "(autotune calibrate); default: the model catalog's at the GPU's speed")

    @model_validator(mode="after")
    def _check(self) -> PoolSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas is above max_replicas")
        _check_queue_cap(self.max_queued_requests)
        init = self.initial
        if not self.min_replicas <= init <= self.max_replicas:
            raise ValueError("initial_replicas is outside [min_replicas, max_replicas]")
        if any(b < 1 for b in self.batch_sizes):
            raise ValueError("batch_sizes must be positive")
        if self.batch_size not in self.batch_sizes:
            raise ValueError(f"batch_size {self.batch_size} is not in batch_sizes")
        if self.max_ongoing_requests < max(self.batch_sizes):
            raise ValueError("max_ongoing_requests is below the largest batch size")
        if self.preemption_rate_per_hour and not self.spot:
            raise ValueError("preemption_rate_per_hour is set on an on-demand pool")
        return self

    @property
    def initial(self) -> int:
        return self.min_replicas if self.initial_replicas is None else self.initial_replicas


class WorkloadSpec(_Strict):
    kind: Literal["synthetic", "trace"]
    generator: Literal["poisson", "daily", "mmpp", "flash", "ramp", "crowds", "spiky", "llm-clumped",
                       "worldcup"] | None = None
    trace: str | None = None
    mean_rate: float | None = Field(default=None, gt=0, description="req/s")
    time_scale: float = Field(default=1.0, gt=0)
    rate_scale: float = Field(default=1.0, gt=0)
    duration_s: float | None = Field(default=None, gt=0)
    params: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> WorkloadSpec:
        if self.kind == "synthetic":
            if self.generator is None:
                raise ValueError("a synthetic workload needs a generator")
            if self.mean_rate is None or self.duration_s is None:
                raise ValueError("a synthetic workload needs mean_rate and duration_s")
        elif self.trace is None:
            raise ValueError("a trace workload needs a trace path")
        return self


class RayAutoscalerSpec(_Strict):
    """Ray Serve autoscaling_config knobs used by the ``ray-default`` baseline.

    Defaults are Ray Serve 2.60's (ray/serve/config.py, AutoscalingConfig).
    """

    target_ongoing_requests: float = Field(default=2.0, gt=0)
    upscale_delay_s: float = Field(default=30.0, ge=0)
    downscale_delay_s: float = Field(default=600.0, ge=0)
    look_back_period_s: float = Field(default=30.0, gt=0)
    upscaling_factor: float | None = Field(default=None, gt=0)
    downscaling_factor: float | None = Field(default=None, gt=0)


class RewardSpec(_Strict):
    """Weights of the RL reward; also reported on every evaluation."""

    cost_weight: float = Field(default=1.0, ge=0)
    slo_weight: float = Field(default=1.0, ge=0)
    churn_weight: float = Field(default=0.01, ge=0)
    # The most one window's SLO term can be (before slo_weight). At 10 a window missing all its requests costs as
    # much as one missing 10% more than its budget; 100 charges deep misses (bursts, flash crowds) near in full.
    slo_cap: float = Field(default=10.0, gt=0)


class TrainingSpec(_Strict):
    """What RL training episodes look like for this scenario (domain randomization)."""

    mean_rate_range: tuple[float, float] = Field(default=(10.0, 1000.0), description="req/s, drawn log-uniform")
    episode_s: float = Field(default=1800.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> TrainingSpec:
        lo, hi = self.mean_rate_range
        if not 0 < lo <= hi:
            raise ValueError("mean_rate_range must be two rates with 0 < low <= high")
        return self


class Scenario(_Strict):
    name: str
    description: str = ""
    model: str
    slo: SLO
    control_interval_s: float = Field(default=10.0, gt=0)
    pools: list[PoolSpec] = Field(min_length=1)
    workload: WorkloadSpec
    max_queued_requests: int = Field(default=-1, description="Every pool's max_queued_requests unless it sets "
                                     "its own; -1: unbounded (Ray's default)")
    client_timeout_s: float | None = Field(default=None, gt=0, description="A client gives up on a request "
                                           "still queued at the router this long after sending it; "
                                           "None: clients wait")
    proxy_overhead_ms: float = Field(default=1.0, ge=0, description="HTTP proxy and handle time per request "
                                     "before routing (an estimate: about 1 ms per request on Ray Serve's proxy)")
    node_idle_timeout_s: float = Field(default=60.0, ge=0, description="Ray autoscaler idle node timeout")
    spot_warning_s: float = Field(default=120.0, ge=0, description="AWS two-minute notice")
    drain_s: float = Field(default=30.0, ge=0, description="Simulated time after the last arrival")
    ray_autoscaler: RayAutoscalerSpec = Field(default_factory=RayAutoscalerSpec)
    reward: RewardSpec = Field(default_factory=RewardSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    calibration: dict[str, Any] = Field(default_factory=dict, description="Where the pools' service profiles "
                                        "came from (autotune calibrate: source, span, residuals); not simulated")
    # Where the file came from; relative trace paths resolve against the repo root.
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise ValueError("pool names must be unique")
        _check_queue_cap(self.max_queued_requests)
        return self

    def pool_max_queued(self, pool: PoolSpec) -> int:
        """The pool's queue cap as deployed: its own, else the scenario's."""
        return self.max_queued_requests if pool.max_queued_requests is None else pool.max_queued_requests

    def runtime_pools(self) -> list[PoolRuntime]:
        return [_runtime_pool(self, p) for p in self.pools]

    def trace_path(self) -> Path | None:
        if self.workload.trace is None:
            return None
        p = Path(self.workload.trace)
        return p if p.is_absolute() else ROOT / p


@dataclass(frozen=True)
class PoolRuntime:
    """A pool with its instance facts and model profile resolved to numbers."""

    spec: PoolSpec
    index: int
    price_per_hour: float
    speed: float  # relative to the reference GPU
    provision_s: float
    load_s: float
    fixed_ms: float
    per_item_ms: float
    per_token_ms: float
    max_tokens: int
    noise_sigma: float

    @property
    def name(self) -> str:
        return self.spec.name

    def batch_ms(self, batch: int, tokens: float = 0.0) -> float:
        """Mean service time of one batch (no noise)."""
        tok = min(tokens, self.max_tokens) if self.max_tokens else 0.0
        return self.fixed_ms + batch * (self.per_item_ms + self.per_token_ms * tok)


def _runtime_pool(sc: Scenario, pool: PoolSpec) -> PoolRuntime:
    inst = instance_catalog()[pool.instance]
    ref = instance_catalog()[REFERENCE_GPU]
    model = model_catalog()[sc.model]
    speed = inst.mlperf_resnet50_offline / ref.mlperf_resnet50_offline
    svc = pool.service
    return PoolRuntime(
        spec=pool,
        index=sc.pools.index(pool),
        price_per_hour=inst.spot_usd_per_hour if pool.spot else inst.on_demand_usd_per_hour,
        speed=speed,
        provision_s=inst.provision_s if pool.provision_s is None else pool.provision_s,
        load_s=model.load_s if svc is None or svc.load_s is None else svc.load_s,
        fixed_ms=model.fixed_ms if svc is None else svc.fixed_ms,
        per_item_ms=model.per_item_ms / speed if svc is None else svc.per_item_ms,
        per_token_ms=model.per_token_ms / speed,
        max_tokens=model.max_tokens,
        noise_sigma=model.noise_sigma if svc is None or svc.noise_sigma is None else svc.noise_sigma,
    )


def _validation_error(source: str | Path, err: ValidationError) -> InputError:
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or None
    msg = first["msg"].removeprefix("Value error, ")
    return InputError(source, loc, msg)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(path, None, f"cannot read ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise InputError(path, where, "not valid YAML") from None
    if not isinstance(data, dict):
        raise InputError(path, None, "expected a mapping at the top level")
    return data


@cache
def instance_catalog() -> dict[str, InstanceType]:
    path = CATALOG / "instances.yaml"
    try:
        return {k: InstanceType(**v) for k, v in _read_yaml(path).items()}
    except ValidationError as e:
        raise _validation_error(path, e) from None


@cache
def model_catalog() -> dict[str, ModelProfile]:
    path = CATALOG / "models.yaml"
    try:
        return {k: ModelProfile(**v) for k, v in _read_yaml(path).items()}
    except ValidationError as e:
        raise _validation_error(path, e) from None


def scenario_names() -> list[str]:
    return sorted(p.stem for p in ENVS.glob("*.yaml"))


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    s = str(name_or_path)
    if s.endswith((".yaml", ".yml")) or "/" in s:
        return Path(s)
    path = ENVS / f"{s}.yaml"
    if not path.exists():
        known = ", ".join(scenario_names())
        raise InputError(s, None, f"no such scenario (known: {known})")
    return path


def load_scenario(name_or_path: str | Path) -> Scenario:
    path = resolve_scenario_path(name_or_path)
    data = _read_yaml(path)
    data.setdefault("name", path.stem)
    data.setdefault("source", str(path))
    try:
        sc = Scenario(**data)
    except ValidationError as e:
        raise _validation_error(path, e) from None
    if sc.model not in model_catalog():
        raise InputError(path, "model", f"unknown model {sc.model!r} (known: {', '.join(model_catalog())})")
    for i, pool in enumerate(sc.pools):
        if pool.instance not in instance_catalog():
            known = ", ".join(instance_catalog())
            raise InputError(path, f"pools.{i}.instance", f"unknown instance type {pool.instance!r} (known: {known})")
    trace = sc.trace_path()
    if trace is not None and not trace.exists():
        raise InputError(path, "workload.trace", f"trace file {trace} does not exist")
    return sc


def with_instance(scenario: Scenario, instance: str) -> Scenario:
    """The same scenario with every pool on GPU type ``instance`` (what if we ran on an H100?)."""
    if instance not in instance_catalog():
        known = ", ".join(instance_catalog())
        raise InputError("command line", "--instance", f"unknown instance type {instance!r} (known: {known})")
    pools = [p.model_copy(update={"instance": instance}) for p in scenario.pools]
    return scenario.model_copy(update={"pools": pools, "name": f"{scenario.name}@{instance}"})
