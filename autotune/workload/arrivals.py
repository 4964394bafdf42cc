"""Arrivals for one run: from a trace file or a generator, rescaled, seeded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.errors import InputError
from autotune.scenario import Scenario, WorkloadSpec
from autotune.workload import synthetic
from autotune.workload.families import SAMPLERS
from autotune.workload.traces import RateTrace, RequestTrace, read_trace


@dataclass(frozen=True)
class Arrivals:
    """Request arrival times (s, sorted from 0) and token counts, over ``duration_s``."""

    times: np.ndarray
    tokens: np.ndarray
    duration_s: float
    source: str

    @property
    def mean_rate(self) -> float:
        return self.times.size / self.duration_s if self.duration_s > 0 else 0.0

    def __len__(self) -> int:
        return int(self.times.size)


@dataclass(frozen=True)
class TraceOptions:
    """Command-line overrides of a scenario's workload (``--time-scale`` etc.)."""

    trace: str | None = None
    time_scale: float | None = None
    rate_scale: float | None = None
    mean_rate: float | None = None
    duration_s: float | None = None

    def apply(self, spec: WorkloadSpec) -> WorkloadSpec:
        """The workload with the overrides; ``duration_s`` only for a trace (a generator's arrivals are cut to it
        by :func:`build_arrivals`: its rate curve keeps the shape it has over its own duration)."""
        out = spec
        if self.trace is not None:
            # A path typed on the command line is relative to where it was typed.
            out = replace_spec(out, kind="trace", trace=str(Path(self.trace).resolve()), generator=None,
                               mean_rate=None, time_scale=1.0, rate_scale=1.0, duration_s=None)
        for name in ("time_scale", "rate_scale", "mean_rate", "duration_s"):
            value = getattr(self, name)
            if value is not None:
                if not value > 0:
                    flag = "--duration" if name == "duration_s" else f"--{name.replace('_', '-')}"
                    raise InputError("command line", flag, "must be positive")
                if name != "duration_s" or out.kind == "trace":
                    out = replace_spec(out, **{name: value})
        return out


def replace_spec(spec: WorkloadSpec, **changes: object) -> WorkloadSpec:
    return WorkloadSpec(**{**spec.model_dump(), **changes})


def _from_trace(spec: WorkloadSpec, path: Path, rng: np.random.Generator) -> Arrivals:
    trace = read_trace(path)
    if isinstance(trace, RequestTrace):
        t = trace.arrival_s * spec.time_scale
        tok = trace.tokens
        # The trace covers its last request plus one mean gap, so that request is kept.
        span = float(t[-1] + (t[-1] - t[0]) / (t.size - 1)) if t.size > 1 else 1.0
        duration = span if spec.duration_s is None else spec.duration_s
        keep = t < duration
        t, tok = t[keep], tok[keep]
        factor = spec.rate_scale * (spec.mean_rate * duration / max(t.size, 1) if spec.mean_rate else 1.0)
        if factor != 1.0:
            t, tok = synthetic.scale_requests(t, tok, factor, rng)
            keep = t < duration
            t, tok = t[keep], tok[keep]
        return Arrivals(t, tok.astype(np.float32), float(duration), str(path))
    assert isinstance(trace, RateTrace)
    start = trace.start_s * spec.time_scale
    width = trace.width_s * spec.time_scale
    span = float(start[-1] + width[-1])
    duration = span if spec.duration_s is None else spec.duration_s
    keep = start < duration
    start, width, counts = start[keep], np.minimum(width[keep], duration - start[keep]), trace.counts[keep]
    expected = counts * spec.rate_scale
    if spec.mean_rate:
        expected = expected * (spec.mean_rate * duration / max(expected.sum(), 1e-12))
    # Stochastic rounding keeps the expected count exact for fractional scales.
    base = np.floor(expected)
    n = (base + (rng.random(expected.size) < expected - base)).astype(np.int64)
    t = synthetic.spread_counts(n, start, width, rng)
    return Arrivals(t, np.zeros(t.size, dtype=np.float32), float(duration), str(path))


def _from_generator(spec: WorkloadSpec, rng: np.random.Generator, keep_s: float | None = None) -> Arrivals:
    """The generator's arrivals over its duration; with ``keep_s``, only the first ``keep_s`` seconds (a generator
    run for ``keep_s`` where that is longer than its duration)."""
    assert spec.generator is not None and spec.mean_rate is not None and spec.duration_s is not None
    full = max(spec.duration_s, keep_s or 0.0)
    duration = full if keep_s is None else min(keep_s, full)
    if spec.generator in SAMPLERS:
        # Same scaling as a rate curve: generated in unscaled time, then times multiplied by time_scale.
        t, tok = SAMPLERS[spec.generator](spec.mean_rate * spec.rate_scale,
                                          full / spec.time_scale, spec.params, rng)
        t = t * spec.time_scale
        keep = t < duration
        t = t[keep]
        tok = synthetic.synthetic_tokens(t.size, spec.params, rng) if tok is None else tok[keep]
        return Arrivals(t, tok.astype(np.float32), float(duration), f"synthetic:{spec.generator}")
    rates = synthetic.GENERATORS[spec.generator](spec.mean_rate * spec.rate_scale, full / spec.time_scale,
                                                 spec.params, rng)
    width = synthetic.BIN_S * spec.time_scale
    rates = rates[:int(np.ceil(duration / width - 1e-9))]  # no arrivals drawn past the cut
    t = synthetic.sample_poisson(rates / spec.time_scale, width, None, rng)
    t = t[t < duration]
    tok = synthetic.synthetic_tokens(t.size, spec.params, rng)
    return Arrivals(t, tok, float(duration), f"synthetic:{spec.generator}")


def build_arrivals(scenario: Scenario, seed: int, options: TraceOptions | None = None) -> Arrivals:
    """The arrivals a scenario (with command-line overrides) yields for ``seed``."""
    opts = options or TraceOptions()
    spec = opts.apply(scenario.workload)
    rng = np.random.default_rng([seed, 0xA77])
    if spec.kind == "trace":
        assert spec.trace is not None
        sc = scenario.model_copy(update={"workload": spec})
        path = sc.trace_path()
        assert path is not None
        if not path.exists():
            raise InputError(spec.trace, None, "trace file does not exist")
        return _from_trace(spec, path, rng)
    return _from_generator(spec, rng, opts.duration_s)



def stepped_poisson(steps: Sequence[tuple[float, float]], seed: int = 0) -> Arrivals:
    """Poisson arrivals at each (rate, seconds) step in turn: a load that varies, so batches of several
    sizes form (what ``autotune calibrate`` needs to separate a batch's fixed and per-item time)."""
    rng = np.random.default_rng(seed)
    times, t0 = [], 0.0
    for rate, span in steps:
        t = t0 + np.cumsum(rng.exponential(1.0 / rate, int(rate * span * 2)))
        times.append(t[t < t0 + span])
        t0 += span
    t = np.concatenate(times) if times else np.zeros(0)
    return Arrivals(t, np.zeros(t.size, dtype=np.float32), t0, "stepped poisson")
