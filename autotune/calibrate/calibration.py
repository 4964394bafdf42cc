"""Samples → every pool's fits and the traffic's, and what they change in the scenario.

All or nothing: a pool whose batches cannot support a fit is an :class:`InputError` naming the source
and the metric, and no scenario is written (a half-calibrated file would mix measured and catalog pools
without saying which).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autotune.calibrate import fit, measure
from autotune.errors import InputError
from autotune.live.observe import Sample
from autotune.scenario import PoolRuntime, Scenario

# Generators whose mean_rate is the long-run mean rate (for flash, ramp and the others it is a base or a
# start, which a span's mean does not measure): only these take the measured rate.
MEAN_RATE_GENERATORS = ("poisson", "daily", "mmpp")


@dataclass(frozen=True)
class PoolCalibration:
    start: PoolRuntime  # the starting scenario's service model on this pool
    service: fit.ServiceFit
    startup: fit.StartupFit | None

    @property
    def name(self) -> str:
        return self.start.name

    def profile(self) -> dict[str, float]:
        """The pool's ``service:`` entry: the fits, the starting load_s when no replica started, and no
        noise_sigma (the catalog's) when the buckets did not resolve it."""
        s = self.service
        out = {"fixed_ms": round(s.fixed_ms, 2), "per_item_ms": round(s.per_item_ms, 2)}
        if not s.noise_held:
            out["noise_sigma"] = round(s.noise_sigma, 3)
        out["load_s"] = round(self.startup.load_s if self.startup else self.start.load_s, 2)
        return out


@dataclass(frozen=True)
class Calibration:
    source: str
    app: str
    span: str  # the time span the samples cover, as the user gave it
    pools: tuple[PoolCalibration, ...]
    traffic: fit.TrafficFit
    latency: measure.Latency

    def changes(self, sc: Scenario) -> list[tuple[tuple[str | int, ...], Any]]:
        """(path in the scenario file, new value): the pools' service profiles and the traffic that fits."""
        out: list[tuple[tuple[str | int, ...], Any]] = [(("pools", p.start.index, "service"), p.profile())
                                                        for p in self.pools]
        w = sc.workload
        if w.kind == "synthetic" and w.generator in MEAN_RATE_GENERATORS:
            out.append((("workload", "mean_rate"), _sig(self.traffic.mean_rate)))
            if w.generator == "daily" and self.traffic.daily_amplitude is not None:
                out.append((("workload", "params", "amplitude"), round(self.traffic.daily_amplitude, 3)))
        return out

    def record(self) -> dict[str, Any]:
        """The ``calibration:`` block: where each value came from and how well it fits."""
        t = self.traffic
        traffic: dict[str, Any] = {"requests": t.requests, "mean_rate": _sig(t.mean_rate),
                                   "dispersion": round(t.dispersion, 3), "slot_s": round(t.slot_s, 3)}
        if t.daily_amplitude is not None:
            traffic.update(daily_amplitude=round(t.daily_amplitude, 3), daily_rel_rms=_sig(t.daily_rms or 0.0))
        pools = {}
        for p in self.pools:
            s = p.service
            pools[p.name] = {"windows": s.windows, "batches": s.batches, "batch_sizes_seen": s.sizes_seen,
                             "noise_held": s.noise_held,
                             "fixed_ms_se": round(s.fixed_se_ms, 2), "per_item_ms_se": round(s.per_item_se_ms, 2),
                             "time_bucket_rms": round(s.bucket_rms, 4), "time_bucket_worst": round(s.bucket_worst, 4),
                             "replica_starts": p.startup.starts if p.startup else 0}
            if p.startup:
                pools[p.name]["load_s_bucket"] = [p.startup.low_s, p.startup.high_s]
        lat = self.latency
        measured = {"requests": lat.requests, "p50_ms": _round(lat.p50_ms), "p99_ms": _round(lat.p99_ms)}
        return {"source": self.source, "app": self.app, "span": self.span, "pools": pools, "traffic": traffic,
                "measured_latency": measured}


def _sig(v: float) -> float:
    return float(f"{v:.4g}")


def _round(v: float) -> float | None:
    return round(v, 1) if math.isfinite(v) else None


def calibrate(sc: Scenario, samples: Sequence[Sample], app: str, source: str, span: str) -> Calibration:
    """Fit every pool of ``sc`` (deployment named after the pool) and the app's traffic from ``samples``."""
    if sum(s.scrape is not None for s in samples) < 2:
        raise InputError(source, None, "fewer than two successful samples of the metrics")
    pools = []
    for rt in sc.runtime_pools():
        where = f'{measure.BATCH_EXEC}{{application="{app}",deployment="{rt.name}"}}'
        windows = measure.batch_windows(samples, app, rt.name, rt.spec.batch_size)
        if not windows:
            raise InputError(source, where, "no batches recorded (is the app deployed under that name, and "
                             "does it take load?)")
        try:
            svc = fit.fit_service(windows, (rt.fixed_ms, rt.per_item_ms, rt.noise_sigma), where)
            up = fit.fit_startup(measure.startups(samples, app, rt.name),
                                 field=f'{measure.STARTUP}{{deployment="{rt.name}"}}')
        except fit.ThinData as e:
            raise InputError(source, e.field, e.problem) from None
        pools.append(PoolCalibration(rt, svc, up))
    counts, slot = measure.arrival_counts(samples, app)
    try:
        traffic = fit.fit_traffic(counts, slot, field=f'requests{{application="{app}"}}')
    except fit.ThinData as e:
        raise InputError(source, e.field, e.problem) from None
    return Calibration(source, app, span, tuple(pools), traffic, measure.latency(samples, app))
