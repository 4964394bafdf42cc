"""Domain randomization: which arrivals an RL episode sees, with held-out seeds, traces and days.

A training episode draws a traffic group (:data:`GROUP_WEIGHTS`, renormalized over the groups not left out),
then a family of it, then a shape and a mean load log-uniform in the scenario's ``training.mean_rate_range``
(default 10..1,000 req/s):

- ``synthetic-shapes``: the five generators (:data:`GENERATORS`) with random shapes;
- ``daily``: a slice of the NASA trace from day 2 on, or of the WorldCup 98 trace's days 2-39, a day
  compressed into an hour;
- ``crowds``: synthetic crowds (:mod:`autotune.workload.crowds`, random compression and base), or four real
  hours of a WorldCup match day 40-52 (:mod:`autotune.workload.worldcup`), starting before one of its crowds;
- ``spiky``: per-second spiky streams (:mod:`autotune.workload.spiky`) with random jitter and bursts;
- ``llm``: nothing: the Azure traces, and the clumped arrivals built from them, are never trained on.

``leave_out`` names a group no episode is drawn from, so a policy trained without it can be benchmarked on it
(leave one family out). What evaluation uses is never trained on:

- synthetic seeds: training builds arrivals with seeds >= ``TRAIN_SEED_BASE``;
  evaluation (and ``autotune whatif``, whose seeds are small) uses 0..999;
- traces: both Azure traces are never used in training; of NASA, training uses days 2..57 only, so day 0
  (what ``whatif --trace ... --time-scale 0.04167`` replays) and day 1 are held out; of WorldCup, days 0-1 and
  53-55 are held out (``worldcup.HELD_OUT_DAYS``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from autotune.paths import TRACES
from autotune.scenario import Scenario, WorkloadSpec
from autotune.workload import worldcup
from autotune.workload.arrivals import Arrivals, build_arrivals
from autotune.workload.crowds import Crowd, detect_crowds
from autotune.workload.families import GROUPS
from autotune.workload.traces import RateTrace, read_trace

TRAIN_SEED_BASE = 10_000
GENERATORS = ("poisson", "daily", "mmpp", "flash", "ramp")
NASA = TRACES / "nasa_http_1995_per_minute.csv"
NASA_TRAIN_DAYS = (2, 58)  # [first, last) day used for training; days 0-1 are held out
DAY_S = 86400.0
WC = worldcup.WORLDCUP.name
TRAINED_TRACES = (f"{NASA.name} days {NASA_TRAIN_DAYS[0]}..{NASA_TRAIN_DAYS[1] - 1}",
                  f"{WC} days {worldcup.TRAIN_DAILY_DAYS[0]}..{worldcup.TRAIN_DAILY_DAYS[1] - 1} (daily)",
                  f"{WC} days {worldcup.TRAIN_CROWD_DAYS[0]}..{worldcup.TRAIN_CROWD_DAYS[1] - 1} (crowds)")
HELD_OUT_SEEDS = (0, 999)  # first and last: the benchmark's and ``autotune whatif``'s
HELD_OUT_TRACES = ("azure_llm_conv_2023.csv", "azure_llm_code_2023.csv", f"{NASA.name} days 0-1",
                   f"{WC} days 0-1 and 53-55")
# How often each group is drawn. The synthetic shapes keep the largest share (they span the most shapes); the
# real daily traces keep the share NASA had alone; crowds, the costliest misses, get as much.
GROUP_WEIGHTS = {"synthetic-shapes": 0.5, "daily": 0.2, "crowds": 0.2, "spiky": 0.1}
# The families each group draws from in training, with the names the benchmark gives them.
TRAINING_FAMILIES = {"synthetic-shapes": GENERATORS, "daily": ("nasa", "worldcup-daily"),
                     "crowds": ("synthetic-crowds", "worldcup-crowds"), "spiky": ("spiky",), "llm": ()}
TRAINED_GENERATORS = (*GENERATORS, "crowds", "spiky")


@dataclass(frozen=True)
class Episode:
    arrivals: Arrivals
    label: str
    time_offset_s: float = 0.0  # where in the (compressed) day the episode starts
    group: str = ""
    family: str = ""
    seed: int = 0  # the arrivals' seed (synthetic families)
    day: float | None = None  # the first trace day (trace families)


def check_leave_out(leave_out: str | None) -> None:
    if leave_out is not None and leave_out not in GROUPS:
        raise ValueError(f"leave_out must be one of {', '.join(GROUPS)} (got {leave_out!r})")


def trained_generators(leave_out: str | None = None) -> list[str]:
    out = [] if leave_out == "synthetic-shapes" else list(GENERATORS)
    return out + [g for g, grp in (("crowds", "crowds"), ("spiky", "spiky")) if grp != leave_out]


def trained_traces(leave_out: str | None = None) -> list[str]:
    return [t for t, grp in zip(TRAINED_TRACES, ("daily", "daily", "crowds"), strict=True) if grp != leave_out]


def _params(generator: str, rng: np.random.Generator, duration_s: float, day_s: float) -> tuple[dict, float]:
    """Random shape parameters for a generator, and the time-of-day offset they imply."""
    if generator == "daily":
        offset = float(rng.uniform(0, day_s))
        # Start the sine at ``offset`` into the day (the generator starts at the trough).
        return {"amplitude": float(rng.uniform(0.2, 0.8)), "period_s": day_s,
                "phase": -math.pi / 2 + 2 * math.pi * offset / day_s}, offset
    if generator == "mmpp":
        return {"burst_factor": float(rng.uniform(1.5, 4.0)), "mean_burst_s": float(rng.uniform(30, 180)),
                "mean_calm_s": float(rng.uniform(120, 480))}, 0.0
    if generator == "flash":
        return {"spike_factor": float(rng.uniform(1.5, 5.0)), "spike_start_frac": float(rng.uniform(0.15, 0.8)),
                "spike_duration_s": float(rng.uniform(60, 400)), "ramp_s": float(rng.uniform(10, 180))}, 0.0
    if generator == "ramp":
        return {"spread": float(rng.uniform(0.2, 0.9))}, 0.0
    if generator == "crowds":  # compress 2-8 spans a match crowd of 75-20 min; a flat or daily base
        return {"compress": float(math.exp(rng.uniform(math.log(2.0), math.log(8.0)))),
                "amplitude": float(rng.choice([0.0, rng.uniform(0.2, 0.6)])), "period_s": day_s}, 0.0
    if generator == "spiky":
        return {"jitter_sigma": float(rng.uniform(0.15, 0.4)), "bursts_per_min": float(rng.uniform(0.5, 4.0)),
                "burst_scale": float(rng.uniform(0.2, 0.8)), "slot_concentration": float(rng.uniform(0.2, 2.0))}, 0.0
    return {}, 0.0


def nasa_slice(day: float, mean_rate: float, duration_s: float, time_scale: float,
               rng: np.random.Generator) -> Arrivals:
    """NASA arrivals from ``day`` (fractional) on, time-compressed and rescaled to ``mean_rate``."""
    trace = read_trace(NASA)
    assert isinstance(trace, RateTrace)
    t = worldcup.rate_slice(trace, day, mean_rate, duration_s, time_scale, rng)
    return Arrivals(t, np.zeros(t.size, dtype=np.float32), float(duration_s), f"{NASA.name}@day{day:.2f}")


@cache
def _training_crowds() -> tuple[Crowd, ...]:
    lo, hi = worldcup.TRAIN_CROWD_DAYS
    return tuple(c for c in detect_crowds(worldcup.trace()) if lo * DAY_S <= c.start_s < hi * DAY_S)


def _worldcup(day: float, rate: float, duration_s: float, scale: float, seed: int) -> Arrivals:
    # A held-out day inside the slice would leak the benchmark's crowds into training.
    assert not worldcup.held_out(day, duration_s / scale / DAY_S), day
    t = worldcup.rate_slice(worldcup.trace(), day, rate, duration_s, scale, np.random.default_rng([seed, 0x3C]))
    return Arrivals(t, np.zeros(t.size, dtype=np.float32), float(duration_s), f"{WC}@day{day:.2f}")


def sample_training_episode(scenario: Scenario, rng: np.random.Generator, duration_s: float,
                            day_s: float, leave_out: str | None = None) -> Episode:
    """One randomized training episode (never a held-out seed, trace or day, nor a group left out)."""
    check_leave_out(leave_out)
    groups = [g for g in GROUP_WEIGHTS if g != leave_out]
    w = np.array([GROUP_WEIGHTS[g] for g in groups])
    group = groups[int(rng.choice(len(groups), p=w / w.sum()))]
    fams = TRAINING_FAMILIES[group]
    family = fams[int(rng.integers(len(fams)))]
    lo, hi = scenario.training.mean_rate_range
    rate = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    seed = TRAIN_SEED_BASE + int(rng.integers(0, 2**31))
    return family_episode(scenario, group, family, rate, seed, rng, duration_s, day_s)


def family_episode(scenario: Scenario, group: str, family: str, rate: float, seed: int,
                   rng: np.random.Generator, duration_s: float, day_s: float) -> Episode:
    """An episode of one training family at ``rate``: its shape (and trace day) drawn from ``rng``, its arrivals
    from ``seed``. Training draws the seed from its own range; validation passes its own seeds."""
    if family == "nasa":
        day = float(rng.uniform(NASA_TRAIN_DAYS[0], NASA_TRAIN_DAYS[1] - 1))
        scale = 1 / 24  # a day in an hour, like the synthetic daily scenarios
        arr = nasa_slice(day, rate, duration_s, scale, np.random.default_rng([seed, 0x7A5A]))
        return Episode(arr, f"nasa day {day:.2f} @ {rate:.0f} req/s", (day * DAY_S * scale) % day_s, group, family,
                       seed, day)
    if family == "worldcup-daily":
        scale = worldcup.DAILY_SCALE
        first, last = worldcup.TRAIN_DAILY_DAYS
        day = float(rng.uniform(first, last - duration_s / scale / DAY_S))
        arr = _worldcup(day, rate, duration_s, scale, seed)
        return Episode(arr, f"worldcup day {day:.2f} @ {rate:.0f} req/s", (day * DAY_S * scale) % day_s, group,
                       family, seed, day)
    if family == "worldcup-crowds":
        scale = worldcup.CROWD_SCALE
        span = duration_s / scale / DAY_S
        crowd = _training_crowds()[int(rng.integers(len(_training_crowds())))]
        # Start up to 80% of the window before the crowd, never past the last training day.
        day = crowd.start_s / DAY_S - float(rng.uniform(0.0, 0.8)) * span
        day = min(max(day, worldcup.TRAIN_CROWD_DAYS[0]), worldcup.TRAIN_CROWD_DAYS[1] - span)
        arr = _worldcup(day, rate, duration_s, scale, seed)
        return Episode(arr, f"worldcup crowd day {day:.2f} @ {rate:.0f} req/s", 0.0, group, family, seed, day)
    gen = {"synthetic-crowds": "crowds"}.get(family, family)
    params, offset = _params(gen, rng, duration_s, day_s)
    spec = WorkloadSpec(kind="synthetic", generator=gen, mean_rate=rate, duration_s=duration_s,  # type: ignore[arg-type]
                        params=params)
    arr = build_arrivals(scenario.model_copy(update={"workload": spec}), seed)
    return Episode(arr, f"{gen} @ {rate:.0f} req/s seed {seed}", offset, group, family, seed)
