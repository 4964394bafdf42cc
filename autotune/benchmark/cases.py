"""The held-out cases: one hour of arrivals each, on workloads and seeds no policy trained on.

A case is one ``autotune whatif`` run: the same arrivals (and cluster RNG) for every policy and both oracle
plans. Each belongs to a *family*, the shape of load it draws from, and each family to a *group*, the kind of
traffic (:data:`GROUPS`), which training can leave out whole (``autotune.rl.workloads``, ``leave_out``):

* ``synthetic-shapes``: ``own``, the scenario's own workload on seeds 0-2 (training uses seeds >= 10,000,
  validation 5,000+); ``poisson``, ``daily``, ``mmpp``, ``flash``, ``ramp``: the scenario with its generator
  swapped, at 30 and 300 req/s (a scenario's own generator is left out: ``own`` covers it);
* ``daily``: ``nasa``, day 0 of the NASA HTTP trace, and ``worldcup-daily``, day 0 of the WorldCup 98 trace
  (both held out of training), a day compressed into an hour;
* ``crowds``: ``worldcup-crowds``, four real hours around the largest match crowd of WorldCup days 53 and 55
  (held out of training, which uses days 40-52), and ``synthetic-crowds``, crowds drawn from the laws fitted to
  the WorldCup crowds (``autotune.workload.crowds``);
* ``llm``: ``azure-conv``, ``azure-code``, the Azure LLM traces rescaled to 10-1,000 req/s, and ``llm-clumped``,
  their arrivals in clumps sharing a timestamp (``autotune.workload.clumps``); never trained on;
* ``spiky``: per-second spiky streams (``autotune.workload.spiky``).

The families are data (:data:`FAMILIES`), so adding one, or leaving one out to test generalisation, is a change
of that table, not of the code that expands it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from autotune.errors import InputError
from autotune.paths import ROOT
from autotune.rl.evaluation import MMPP_PARAMS
from autotune.scenario import Scenario, WorkloadSpec
from autotune.workload.arrivals import Arrivals, TraceOptions, build_arrivals
from autotune.workload.families import Group
from autotune.workload.worldcup import CROWD_SCALE, CROWD_WINDOWS

DURATION_S = 3600.0
TRACE_RATES = (10.0, 100.0, 300.0, 1000.0)
GENERATOR_RATES = (30.0, 300.0)

Source = Literal["own", "generator", "trace"]


@dataclass(frozen=True)
class Family:
    """How one family's cases are made: from the scenario's own workload, a generator, or a trace."""

    name: str
    source: Source
    rates: tuple[float, ...] = ()  # mean req/s, one case each; empty for ``own`` (the scenario's rate)
    seeds: tuple[int, ...] = (0,)
    params: Mapping[str, float] = field(default_factory=dict)  # the generator's shape
    trace: str | None = None  # relative to the checkout, as typed on a command line
    time_scale: float = 1.0
    label: str | None = None  # the case-name prefix, when it is not the family's name
    group: Group = "synthetic-shapes"
    trained: bool = True  # whether training draws from this family (on other seeds or days)
    generator: str | None = None  # the generator, when it is not the family's name
    variants: tuple[tuple[str, Mapping[str, float]], ...] = ()  # (case-name suffix, params added): cases each

    @property
    def prefix(self) -> str:
        return self.label or self.name

    @property
    def generator_name(self) -> str:
        return self.generator or self.name


FAMILIES: tuple[Family, ...] = (
    Family("own", "own", seeds=(0, 1, 2)),
    Family("poisson", "generator", GENERATOR_RATES),
    Family("daily", "generator", GENERATOR_RATES, params={"amplitude": 0.6, "period_s": 3600.0}),
    Family("mmpp", "generator", GENERATOR_RATES, params=MMPP_PARAMS),  # the validation's bursts, on held-out seeds
    Family("flash", "generator", GENERATOR_RATES, params={"spike_factor": 3.0, "ramp_s": 60.0,
                                                          "spike_duration_s": 300.0}),
    Family("ramp", "generator", GENERATOR_RATES, params={"spread": 0.8}),
    Family("azure-conv", "trace", TRACE_RATES, trace="traces/azure_llm_conv_2023.csv", group="llm", trained=False),
    Family("azure-code", "trace", TRACE_RATES, trace="traces/azure_llm_code_2023.csv", group="llm", trained=False),
    # The trace is per minute over days: 1/24 puts day 0 into the hour every case lasts.
    Family("nasa", "trace", TRACE_RATES, trace="traces/nasa_http_1995_per_minute.csv", time_scale=1 / 24,
           label="nasa-day0", group="daily"),
    Family("worldcup-daily", "trace", GENERATOR_RATES, trace="traces/worldcup98_per_minute_to_0625.csv",
           time_scale=1 / 24, label="worldcup-day0", group="daily"),
    # Four real hours in the case's hour: a match crowd climbs for about two hours (autotune.workload.worldcup).
    Family("worldcup-crowds", "generator", GENERATOR_RATES, generator="worldcup", group="crowds",
           variants=tuple((name, {"day": day, "time_scale": CROWD_SCALE}) for name, day in CROWD_WINDOWS.items())),
    # compress 4: the fitted crowds at the time scale of worldcup-crowds.
    Family("synthetic-crowds", "generator", GENERATOR_RATES, generator="crowds", params={"compress": 4.0},
           group="crowds"),
    Family("llm-clumped", "generator", GENERATOR_RATES, group="llm", trained=False,
           variants=(("conv", {"code": 0.0}), ("code", {"code": 1.0}))),
    Family("spiky", "generator", GENERATOR_RATES, group="spiky"),
)


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    scenario: Scenario  # the scenario, its workload swapped for generator families
    seed: int
    options: TraceOptions | None  # the command line's trace options, for trace families
    args: tuple[str, ...]  # the ``autotune whatif`` arguments (policies aside) that make the same run
    note: str = ""  # what the command line cannot say: a generator swapped into the scenario
    group: str = "synthetic-shapes"  # the family's group (GROUPS)

    @property
    def command(self) -> str:
        return self.command_with(())

    def command_with(self, policies: Sequence[str]) -> str:
        """The equivalent ``autotune whatif`` command, asking for ``policies``."""
        pol = [a for p in policies for a in ("--policy", p)]
        line = shlex.join(["autotune", "whatif", "--scenario", self.scenario.name, *pol, *self.args])
        return f"{line}  # {self.note}" if self.note else line

    def arrivals(self) -> Arrivals:
        return build_arrivals(self.scenario, self.seed, self.options)

    def cut(self, duration_s: float) -> Case:
        """The case's first ``duration_s`` seconds: a quick look or a test, not the benchmark."""
        if self.options is not None:
            return replace(self, options=replace(self.options, duration_s=duration_s))
        return replace(self, options=TraceOptions(duration_s=duration_s))


def _expand(sc: Scenario, fam: Family) -> list[Case]:
    if fam.source == "own":
        return [Case(f"own-seed{s}", fam.name, sc, s, None, ("--seed", str(s)), group=fam.group) for s in fam.seeds]
    out = []
    if fam.source == "generator":
        for suffix, extra in fam.variants or (("", {}),):
            prefix = f"{fam.prefix}-{suffix}" if suffix else fam.prefix
            params = {**fam.params, **extra}
            for s in fam.seeds:
                for rate in fam.rates:
                    spec = WorkloadSpec(kind="synthetic", generator=fam.generator_name,  # type: ignore[arg-type]
                                        mean_rate=rate, duration_s=DURATION_S, params=params)
                    # whatif has no option to swap the generator: rate and duration are options, the shape is noted.
                    note = f"with the workload's generator {fam.generator_name} {params}"
                    out.append(Case(f"{prefix}@{rate:g}-seed{s}", fam.name,
                                    sc.model_copy(update={"workload": spec}), s, None,
                                    ("--mean-rate", f"{rate:g}", "--duration", f"{DURATION_S:g}", "--seed", str(s)),
                                    note, fam.group))
        return out
    assert fam.trace is not None
    for s in fam.seeds:
        for rate in fam.rates:
            opts = TraceOptions(trace=str(ROOT / fam.trace), mean_rate=rate, duration_s=DURATION_S,
                                time_scale=fam.time_scale if fam.time_scale != 1.0 else None)
            args = ["--trace", fam.trace]
            if fam.time_scale != 1.0:
                args += ["--time-scale", repr(fam.time_scale)]  # exact: the arrivals are the same
            args += ["--duration", f"{DURATION_S:g}", "--mean-rate", f"{rate:g}"]
            if s:
                args += ["--seed", str(s)]
            name = f"{fam.prefix}@{rate:g}" + (f"-seed{s}" if s else "")
            out.append(Case(name, fam.name, sc, s, opts, tuple(args), group=fam.group))
    return out


def family_names() -> list[str]:
    return [f.name for f in FAMILIES]


def group_of(family: str, table: Sequence[Family] = FAMILIES) -> str:
    """The group of the family named ``family``."""
    return next(f.group for f in table if f.name == family)


def cases(sc: Scenario, families: Iterable[str] | None = None,
          table: Sequence[Family] = FAMILIES) -> list[Case]:
    """Every case of ``sc``, family by family in ``table`` order; only ``families`` if given."""
    wanted = None if families is None else set(families)
    if wanted is not None and (unknown := wanted - {f.name for f in table}):
        raise InputError("command line", "--family", f"unknown case families {sorted(unknown)} "
                         f"(known: {', '.join(f.name for f in table)})")
    out: list[Case] = []
    for fam in table:
        if wanted is not None and fam.name not in wanted:
            continue
        if fam.source == "generator" and fam.generator_name == sc.workload.generator:
            continue
        out.extend(_expand(sc, fam))
    return out
