"""The held-out benchmark: every case under a set of policies and both oracle plans, one what-if run per case.

Each case's arrivals are built once and shared by every policy and plan, so per case the policies differ by
their decisions alone. Per case x policy the run records requests, SLO attainment (all of it, and after the
warm-up: the first 5 minutes from the small initial fleet, which no causal policy can help), cost and p99.
The summary per policy counts the cases it keeps at the SLO target and prices it against ``ray-default``, the
``oracle`` (where the oracle keeps the SLO: where it misses, its cost bounds nothing) and ``oracle-startup``
(the same foresight paying the real start-up delays, where it keeps the SLO); the same per traffic group of
the cases (:func:`summarize_by_group`), so a policy trained with a group left out can be read on that group.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotune.benchmark.cases import FAMILIES, Case, cases
from autotune.benchmark.results import GUARDS, HELDOUT_COLUMNS, RESULTS, clean, heldout_stem, write_result
from autotune.core.types import Decision, Observation, Policy, PolicyState
from autotune.paths import POLICIES, ROOT
from autotune.policies.crowd import split_floor
from autotune.registry import make_policy, ray_tuned_path
from autotune.rl.evaluation import WARMUP_S, slo_after
from autotune.scenario import Scenario
from autotune.sim.capacity import measure_capacity
from autotune.whatif import run_whatif

ORACLES = ("oracle-startup", "oracle")  # what run_whatif appends after the policies, in its order
# The rules, with the insurance ladder a trained policy must not be dominated by (the Pareto target).
LADDER = (1.5, 2.0, 4.0, 6.0)
RULES = ("hpa", "predictive", "predictive+crowd:3", "predictive+hold:3",
         *(f"predictive+crowd:{k:g}" for k in LADDER))
Row = dict[str, float | int | str]
# (case, its index, the policy or plan being simulated, its index in the case, fraction of its run done)
Progress = Callable[[Case, int, str, int, float], None]


def shipped_policy(sc: Scenario) -> str | None:
    """``policies/<scenario>.zip`` when it is shipped, as typed on a command line."""
    return f"policies/{sc.name}.zip" if (POLICIES / f"{sc.name}.zip").exists() else None


def default_policies(sc: Scenario) -> list[str]:
    """ray-default, ray-tuned where a tuned config is shipped, the rules, and the shipped trained policy."""
    out = ["ray-default"] + (["ray-tuned"] if ray_tuned_path(sc).exists() else []) + list(RULES)
    zip_spec = shipped_policy(sc)
    return out + ([zip_spec] if zip_spec else [])


def _resolved(spec: str) -> str:
    """A relative zip that is not in the working directory is read from the checkout (``policies/...``)."""
    inner, mark, k = split_floor(spec)
    if mark:
        return _resolved(inner) + mark + k
    if spec.endswith(".zip") and not Path(spec).exists() and (ROOT / spec).exists():
        return str(ROOT / spec)
    return spec


@dataclass(frozen=True)
class Unguarded:
    """``policy`` with the pools' bounds alone between its decisions and the cluster.

    The simulator applies the live guards to any policy that does not say ``guarded = False`` (the oracle
    plans say so); this says it for a policy that would otherwise be guarded, so a what-if run measures the
    policy's own decisions.
    """

    policy: Policy
    guarded: bool = field(default=False, init=False)

    @property
    def name(self) -> str:
        return self.policy.name

    def initial_state(self) -> PolicyState:
        return self.policy.initial_state()

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        return self.policy.decide(obs, state)

    def __getattr__(self, attr: str) -> Any:  # first, start_warm, reads_metrics: the policy's own
        if attr == "policy":  # not set yet (a copy being built): no attribute, not a recursion
            raise AttributeError(attr)
        return getattr(self.policy, attr)


def run_case(case: Case, policies: Sequence[str], guards: str = "live",
             progress: Progress | None = None, index: int = 0) -> list[Row]:
    """One what-if run of ``case``: a row per policy (labelled as asked for), then per oracle plan."""
    capacity = measure_capacity(case.scenario)
    built: list[Policy] = [make_policy(_resolved(p), case.scenario, capacity) for p in policies]
    if guards == "none":
        built = [Unguarded(p) for p in built]
    # The emulated built-in autoscalers (ray-default, ray-tuned, hpa) and the plans are never guarded: they
    # run inside Ray or Kubernetes, not behind autotune's controller. Each row says whether its run was.
    guarded = [getattr(p, "guarded", True) for p in built] + [False] * len(ORACLES)
    labels = [*policies, *ORACLES]
    names = [p.name for p in built] + list(ORACLES)
    seen: list[str] = []

    def tick(name: str, frac: float) -> None:
        # run_whatif reports by policy name; runs come in order, so a new name is the next run.
        if not seen or seen[-1] != name:
            seen.append(name)
        j = min(len(seen) - 1, len(labels) - 1)
        if progress is not None:
            progress(case, index, labels[j], j, frac)

    res = run_whatif(case.scenario, built, case.seed, arrivals=case.arrivals(), progress=tick)
    assert len(res.results) == len(labels), (names, [r.policy for r in res.results])
    rows: list[Row] = []
    for label, sim_result, live in zip(labels, res.results, guarded, strict=True):
        s = sim_result.summary()
        rows.append({"case": case.name, "family": case.family, "group": case.group, "policy": label,
                     "requests": int(s["requests"]),
                     "slo_attainment": float(s["slo_attainment"]),
                     "slo_after_warmup": slo_after(sim_result, WARMUP_S),
                     "cost_usd": float(s["cost_usd"]), "p99_ms": float(s["p99_ms"]), "guarded": bool(live)})
    return rows


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def summarize(rows: Sequence[Row], target: float) -> dict[str, dict[str, float | int]]:
    """Per policy (and plan): cases kept, worst SLO, cost and cost ratios; see the module's docstring."""
    by_case: dict[str, dict[str, Row]] = {}
    for r in rows:
        by_case.setdefault(str(r["case"]), {})[str(r["policy"])] = r
    policies = list(dict.fromkeys(str(r["policy"]) for r in rows))

    def kept(r: Row, key: str = "slo_attainment") -> bool:
        return float(r[key]) >= target

    reach = [c for c in by_case.values() if kept(c["oracle"])]
    early = [c for c in by_case.values() if kept(c["oracle-startup"])]

    def cost(group: Sequence[dict[str, Row]], p: str) -> float:
        return float(sum(float(c[p]["cost_usd"]) for c in group))

    every = list(by_case.values())
    out: dict[str, dict[str, float | int]] = {}
    for p in policies:
        s: dict[str, float | int] = {
            "cases": len(every),
            "kept": sum(kept(c[p]) for c in every),
            "kept_after_warmup": sum(kept(c[p], "slo_after_warmup") for c in every),
            "oracle_startup_keeps": len(early),
            "kept_where_oracle_startup_keeps": sum(kept(c[p]) for c in early),
            "kept_after_warmup_where_oracle_startup_keeps": sum(kept(c[p], "slo_after_warmup") for c in early),
            "worst_slo": min(float(c[p]["slo_attainment"]) for c in every),
            # Requests within the SLO over all the requests of every case: the SLO axis of the Pareto front.
            "slo_overall": _ratio(sum(float(c[p]["slo_attainment"]) * int(c[p]["requests"]) for c in every),
                                  sum(int(c[p]["requests"]) for c in every)),
            "worst_slo_after_warmup": min(float(c[p]["slo_after_warmup"]) for c in every),
            "cost_usd": cost(every, p),
            "oracle_keeps": len(reach),
            "cost_vs_oracle_where_oracle_keeps": _ratio(cost(reach, p), cost(reach, "oracle")),
            "cost_vs_oracle_startup_where_it_keeps": _ratio(cost(early, p), cost(early, "oracle-startup")),
        }
        if "ray-default" in policies:
            s["cost_vs_ray_default"] = _ratio(cost(every, p), cost(every, "ray-default"))
            s["cheaper_than_ray_default"] = sum(float(c[p]["cost_usd"]) < float(c["ray-default"]["cost_usd"])
                                                for c in every)
        out[p] = s
    return out


def dominated_by(summary: dict[str, dict[str, float | int]], policy: str, rivals: Sequence[str]) -> list[str]:
    """The ``rivals`` both no dearer and no worse in SLO over every case than ``policy``, and better in one."""
    me = summary[policy]
    out = []
    for r in rivals:
        s = summary.get(r)
        if s is None or r == policy:
            continue
        cost, slo = float(s["cost_usd"]), float(s["slo_overall"])
        if (cost <= float(me["cost_usd"]) and slo >= float(me["slo_overall"])
                and (cost < float(me["cost_usd"]) or slo > float(me["slo_overall"]))):
            out.append(r)
    return out


GROUP_KEYS = ("cases", "kept", "kept_after_warmup", "oracle_startup_keeps", "kept_where_oracle_startup_keeps",
              "cost_usd", "cost_vs_ray_default", "cheaper_than_ray_default")


def row_group(r: Row) -> str:
    """A row's traffic group; rows written before groups were recorded get their family's."""
    if r.get("group"):
        return str(r["group"])
    return next((f.group for f in FAMILIES if f.name == r["family"]), "other")


def summarize_by_group(rows: Sequence[Row], target: float) -> dict[str, dict[str, dict[str, float | int]]]:
    """Per traffic group, per policy: :data:`GROUP_KEYS` of :func:`summarize` over the group's cases."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(row_group(r), []).append(r)
    order = list(dict.fromkeys(f.group for f in FAMILIES))
    out = {}
    for g in sorted(groups, key=lambda g: order.index(g) if g in order else len(order)):
        out[g] = {p: {k: s[k] for k in GROUP_KEYS if k in s} for p, s in summarize(groups[g], target).items()}
    return out


@dataclass
class Heldout:
    scenario: Scenario
    policies: list[str]
    guards: str
    rows: list[Row]
    cases: list[Case]
    wall_s: float
    command: str = ""

    def summary(self) -> dict[str, dict[str, float | int]]:
        return summarize(self.rows, self.scenario.slo.target)

    def dominated(self) -> dict[str, list[str]]:
        summary = self.summary()
        rivals = [p for p in self.policies if p in ("ray-default", "ray-tuned", *RULES)]
        return {p: dominated_by(summary, p, rivals) for p in self.policies}

    def document(self) -> dict[str, Any]:
        """The JSON written beside the rows: the summary per policy, how it was made and how long it took."""
        return clean({
            "scenario": self.scenario.name, "slo_target": self.scenario.slo.target, "guards": self.guards,
            "warmup_s": WARMUP_S, "policies": self.policies, "plans": list(ORACLES), "command": self.command,
            "wall_s": round(self.wall_s, 1), "summary": self.summary(),
            "by_group": summarize_by_group(self.rows, self.scenario.slo.target),
            # Per policy, the rules (the built-in autoscalers and autotune's, with the insurance ladder) that
            # are both cheaper and better in SLO over the held-out cases: none for a policy on their front.
            "dominated_by": self.dominated(),
            # Whether the live guards stood between each policy's decisions and the cluster in this run.
            "guarded": {str(r["policy"]): bool(r.get("guarded", False)) for r in self.rows},
            # --guards none has no whatif option: the command is the guarded run's.
            "cases": [{"name": c.name, "family": c.family, "group": c.group, "command": c.command_with(self.policies)}
                      for c in self.cases],
        })


def run_heldout(sc: Scenario, policies: Sequence[str] | None = None, guards: str = "live",
                case_list: Sequence[Case] | None = None, progress: Progress | None = None,
                on_case: Callable[[Case, list[Row]], None] | None = None) -> Heldout:
    """Every case of ``sc`` (or ``case_list``) under ``policies`` (default :func:`default_policies`)."""
    if guards not in GUARDS:
        raise ValueError(f"guards must be one of {GUARDS}, not {guards!r}")
    pols = list(policies) if policies is not None else default_policies(sc)
    todo = list(case_list) if case_list is not None else cases(sc)
    t0 = time.monotonic()
    rows: list[Row] = []
    for i, case in enumerate(todo):
        got = run_case(case, pols, guards, progress, i)
        rows.extend(got)
        if on_case is not None:
            on_case(case, got)
    return Heldout(sc, pols, guards, rows, todo, time.monotonic() - t0)


def write(result: Heldout, folder: Path = RESULTS) -> tuple[Path, Path]:
    """``heldout-<scenario>[-noguards].csv`` (a row per case x policy) and ``.json`` (the summary)."""
    return write_result(folder, heldout_stem(result.scenario.name, result.guards), HELDOUT_COLUMNS, result.rows,
                        result.document())
