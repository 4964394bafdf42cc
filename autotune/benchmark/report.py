"""``docs/results.md`` and the README's result tables, from the committed results in ``bench/results/``.

    .venv/bin/python -m autotune.benchmark.report      # what `make results` runs

The README is rewritten only between marker comments, ``<!-- results:NAME -->`` ... ``<!-- /results:NAME -->``,
for the NAMEs in :func:`sections` (every other byte stays as it is, other NAMEs included); a README without
markers is left alone. A results file the report needs and does not find is a one-line error naming it.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotune.benchmark.cases import FAMILIES
from autotune.benchmark.results import (
    RESULTS,
    SCENARIOS,
    MissingResult,
    heldout_stem,
    load_heldout_summary,
    price_command,
    price_stem,
    read_json,
)
from autotune.fileio import atomic_path, write_text_atomic
from autotune.paths import ROOT

COMMAND = "python -m autotune.benchmark.report"
DOCS = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
# The floor rule: `autotune whatif`'s default insurance, and the recommendation where bursts come close to
# K x the calm load (a causal policy that keeps a surprise crowd must already hold the fleet for it).
RECOMMENDED = "predictive+crowd:3"
GUARDS_REQUIRED = ("default",)  # scenarios whose held-out run is also committed with the bounds alone
PLANS = ("oracle-startup", "oracle")


class ReportError(Exception):
    """A marker the report cannot rewrite; one line."""


@dataclass
class Results:
    """Everything the report shows, read once."""

    heldout: dict[str, dict[str, Any]]  # scenario -> heldout JSON
    noguards: dict[str, dict[str, Any]]  # scenario -> the same with the bounds alone, where committed
    price: dict[str, dict[str, Any]]  # scenario -> price_breakdown JSON
    throughput: dict[str, Any] | None = None
    side_by_side: dict[str, Any] | None = None
    scenarios: list[str] = field(default_factory=list)
    demo: dict[str, Any] | None = None
    fidelity: dict[str, Any] | None = None


def load(folder: Path = RESULTS, scenarios: Sequence[str] = SCENARIOS,
         guards_required: Sequence[str] = GUARDS_REQUIRED) -> Results:
    """Read the results; :class:`MissingResult` names the first file that should be there and is not."""
    heldout = {s: load_heldout_summary(s, folder=folder) for s in scenarios}
    noguards = {}
    for s in scenarios:
        if s in guards_required or (folder / f"{heldout_stem(s, 'none')}.json").exists():
            noguards[s] = load_heldout_summary(s, "none", folder=folder)
    price = {s: read_json(folder / f"{price_stem(s)}.json", price_command(s)) for s in scenarios}
    optional = {}
    for name in ("sim_throughput", "side_by_side", "demo", "fidelity"):
        path = folder / f"{name}.json"
        optional[name] = read_json(path, "") if path.exists() else None
    return Results(heldout, noguards, price, optional["sim_throughput"], optional["side_by_side"], list(scenarios),
                   optional["demo"], optional["fidelity"])


def _x(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.2f}x"


def _pct(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.2%}"


def _usd(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"${v:,.2f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _shipped(scenario: str) -> str:
    return f"policies/{scenario}.zip"


def _label(policy: str, scenario: str) -> str:
    if policy == _shipped(scenario):
        return f"`{policy}` (shipped)"
    if policy in PLANS:
        return f"`{policy}` (plan)"
    return f"`{policy}`" + (" (recommended)" if policy == RECOMMENDED else "")


def heldout_table(doc: Mapping[str, Any]) -> str:
    """Per policy and plan: cases kept, the worst case after the warm-up, cost and its ratios."""
    sc = doc["scenario"]
    summ = doc["summary"]
    first = next(iter(summ.values()))
    n, early, reach = first["cases"], first["oracle_startup_keeps"], first["oracle_keeps"]
    head = ["policy", f"kept (of {n})", "after the warm-up", f"where oracle-startup keeps ({early})",
            "worst after the warm-up", "cost", "vs ray-default", f"vs oracle ({reach} cases)",
            f"vs oracle-startup ({early})"]
    dominated = doc.get("dominated_by")
    if dominated is not None:
        head += ["SLO over all requests", "rules cheaper and better in SLO"]
    rows = []
    for p, s in summ.items():
        rows.append([_label(p, sc), str(s["kept"]), str(s["kept_after_warmup"]),
                     f"{s['kept_where_oracle_startup_keeps']} ({s['kept_after_warmup_where_oracle_startup_keeps']} "
                     "after the warm-up)", _pct(s["worst_slo_after_warmup"]), _usd(s["cost_usd"]),
                     _x(s.get("cost_vs_ray_default")), _x(s["cost_vs_oracle_where_oracle_keeps"]),
                     _x(s["cost_vs_oracle_startup_where_it_keeps"])])
        if dominated is not None:
            rows[-1] += [_pct(s.get("slo_overall")),
                         "-" if p not in dominated else ", ".join(f"`{r}`" for r in dominated[p]) or "none"]
    return _table(head, rows)


def group_table(doc: Mapping[str, Any]) -> str:
    """Per policy and plan, per traffic group: cases kept of the group's, and cost against ray-default."""
    by_group: Mapping[str, Mapping[str, Any]] = doc["by_group"]
    sc = doc["scenario"]
    groups = list(by_group)
    head = ["policy"] + [f"{g} ({next(iter(by_group[g].values()))['cases']}): kept, cost vs ray-default"
                         for g in groups]
    rows = []
    for p in doc["summary"]:
        cells = [_label(p, sc)]
        for g in groups:
            s = by_group[g].get(p)
            cells.append("-" if s is None else f"{s['kept']}, {_x(s.get('cost_vs_ray_default'))}")
        rows.append(cells)
    return _table(head, rows)


def heldout_summary(res: Results) -> str:
    """One line per scenario: the recommended policy, and the shipped one, against ray-default. "Kept" counts
    the cases at the SLO target among those ``oracle-startup`` keeps: the cases a policy facing the same
    start-up delays can keep at all."""
    rows = []
    for sc in res.scenarios:
        summ = res.heldout[sc]["summary"]

        def kept(p: str, summ: Mapping[str, Any] = summ) -> str:
            return str(summ[p]["kept_where_oracle_startup_keeps"]) if p in summ else "-"

        def cost(p: str, summ: Mapping[str, Any] = summ) -> str:
            return _x(summ[p].get("cost_vs_ray_default")) if p in summ else "-"

        reach = next(iter(summ.values()))["oracle_startup_keeps"]
        n = next(iter(summ.values()))["cases"]
        rows.append([f"`{sc}`", f"{reach} of {n}", kept("ray-default"), kept(RECOMMENDED), kept(_shipped(sc)),
                     cost(RECOMMENDED), cost(_shipped(sc))])
    head = ["scenario", "cases `oracle-startup` keeps", "kept: ray-default", f"kept: `{RECOMMENDED}`",
            "kept: shipped policy", f"cost vs ray-default: `{RECOMMENDED}`", "cost vs ray-default: shipped"]
    return _table(head, rows)


def group_summary(res: Results) -> str:
    """Per scenario and traffic group, as :func:`heldout_summary`: which family of traffic holds the figures."""
    rows = []
    for sc in res.scenarios:
        doc = res.heldout[sc]
        for group, summ in doc.get("by_group", {}).items():
            def kept(p: str, summ: Mapping[str, Any] = summ) -> str:
                return str(summ[p]["kept_where_oracle_startup_keeps"]) if p in summ else "-"

            def cost(p: str, summ: Mapping[str, Any] = summ) -> str:
                return _x(summ[p].get("cost_vs_ray_default")) if p in summ else "-"

            first = next(iter(summ.values()))
            rows.append([f"`{sc}`", group, f"{first['oracle_startup_keeps']} of {first['cases']}",
                         kept("ray-default"), kept(RECOMMENDED), kept(_shipped(sc)), cost(RECOMMENDED),
                         cost(_shipped(sc))])
    head = ["scenario", "traffic", "cases `oracle-startup` keeps", "kept: ray-default", f"kept: `{RECOMMENDED}`",
            "kept: shipped policy", f"cost vs ray-default: `{RECOMMENDED}`", "cost vs ray-default: shipped"]
    return _table(head, rows)


def _by_name(price: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(r["name"]): r for r in price["summary"]}


def price_summary(res: Results) -> str:
    """Per scenario: the two plans' prices, and what the policies pay beyond the plan each is compared with."""
    shown = ["ray-default", "predictive", RECOMMENDED, "predictive+hold:3"]
    rows = []
    ks: set[str] = set()
    for sc in res.scenarios:
        doc = res.price[sc]
        rows_by = _by_name(doc)
        insured = [r for r in doc["summary"] if r["kind"] == "plan" and r["name"].startswith("oracle+crowd:")]
        ks |= {r["name"] for r in insured}
        cells = [f"`{sc}`", str(rows_by["oracle"]["cases"]), _x(rows_by["oracle-startup"]["vs_oracle"]),
                 ", ".join(f"{_x(r['vs_oracle'])} ({r['name'].rpartition(':')[2]}x)" for r in insured)]
        for p in [*shown, _shipped(sc)]:
            r = rows_by.get(p)
            cells.append("-" if r is None else f"{_x(r['vs_plan'])} `{r['compared_with']}`")
        rows.append(cells)
    head = ["scenario", "cases (oracle keeps)", "start-up delay: oracle-startup / oracle",
            "insurance: oracle+crowd:K / oracle", *[f"`{p}` beyond its plan" for p in shown],
            "shipped beyond its plan"]
    return _table(head, rows)


def price_table(doc: Mapping[str, Any]) -> str:
    rows = []
    for r in doc["summary"]:
        rows.append([f"`{r['name']}`" + (" (plan)" if r["kind"] == "plan" else ""), f"`{r['compared_with']}`",
                     f"{r['kept']} ({r['kept_after_warmup']})", _usd(r["cost_usd"]), _x(r["vs_oracle"]),
                     _x(r["plan_vs_oracle"]), _x(r["vs_plan"]),
                     str(r[next(k for k in r if k.startswith("cases_within_"))])])
    within = next(k for k in doc["summary"][0] if k.startswith("cases_within_"))
    ratio = within.removeprefix("cases_within_").removesuffix("x_plan")
    n = doc["summary"][0]["cases"]
    head = ["policy or plan", "plan", f"kept of {n} (after the warm-up)", "cost", "vs oracle", "plan vs oracle",
            "beyond the plan", f"cases within {ratio}x of the plan"]
    return _table(head, rows)


def price_group_table(doc: Mapping[str, Any]) -> str:
    """Per traffic group, over its cases where the oracle keeps the SLO: each plan's and policy's cost against
    ray-default's (a plan above the 0.6x target says no policy holding what it holds gets there)."""
    groups = doc.get("by_group") or {}
    if not groups:
        return ""
    names = [str(r["name"]) for r in next(iter(groups.values())) if r["name"] != "ray-default"]
    rows = []
    for g, summary in groups.items():
        by = {str(r["name"]): r for r in summary}
        rows.append([g, str(summary[0]["cases"]), *[_x(by[n].get("vs_ray_default")) if n in by else "-"
                                                   for n in names]])
    return _table(["group", "cases (oracle keeps)", *[f"`{n}`" for n in names]], rows)


def guards_table(on: Mapping[str, Any], off: Mapping[str, Any]) -> str:
    """Per policy: cost and cases kept with the live guards and with the pools' bounds alone."""
    rows = []
    sc = on["scenario"]
    guarded = on.get("guarded", {})
    for p, s in on["summary"].items():
        t = off["summary"].get(p)
        if t is None or p in PLANS:  # the plans are never guarded
            continue
        if not guarded.get(p, True):
            cost = "none: not behind the controller"  # an emulated built-in autoscaler, the same in both runs
        else:
            cost = f"{s['cost_usd'] / t['cost_usd'] - 1:+.1%}" if t["cost_usd"] > 0 else "-"
        rows.append([_label(p, sc), _usd(s["cost_usd"]), _usd(t["cost_usd"]), cost,
                     f"{s['kept_after_warmup']} / {t['kept_after_warmup']}",
                     f"{_pct(s['worst_slo_after_warmup'])} / {_pct(t['worst_slo_after_warmup'])}"])
    n = next(iter(on["summary"].values()))["cases"]
    head = ["policy", "cost, live guards", "cost, bounds alone", "the guards' cost",
            f"kept of {n} after the warm-up: guards / bounds", "worst after the warm-up: guards / bounds"]
    return _table(head, rows)


def guards_summary(res: Results) -> str:
    return "\n\n".join(f"`{sc}`:\n\n" + guards_table(res.heldout[sc], res.noguards[sc]) for sc in res.noguards)


def throughput_text(doc: Mapping[str, Any]) -> str:
    return (f"{doc['requests']:,} requests ({doc['rate']:g} req/s for {doc['duration_s']:g} s) in "
            f"{doc['sim_cpu_s']:.2f} s CPU, best of {doc['repeat']}: {doc['simulated_requests_per_s']:,} simulated "
            f"requests per CPU second on {doc['machine']}. The in-process baseline ({doc['baseline']}) took "
            f"{doc['baseline_cpu_s']:.3f} s CPU; **normalized {doc['normalized']:.2f}** (simulator / baseline, "
            f"lower is faster: the figure to compare across machines). `{doc['command']}`")


def side_by_side_table(doc: Mapping[str, Any]) -> str:
    rows = [[str(r["run"]), str(r["source"]), f"{r['requests']:,}", _usd(r["usd"]),
             "-" if r["p99_ms"] is None else f"{r['p99_ms']:,.0f}", _pct(r["slo_attainment"])] for r in doc["rows"]]
    return _table(["run", "source", "requests", "cost", "p99 (ms)", "SLO attainment"], rows)


FIDELITY_METRICS = (("p50_ms", "p50"), ("p99_ms", "p99"), ("replica_s", "replica-s"))


def fidelity_table(doc: Mapping[str, Any]) -> str:
    """Per live run: what was measured, and the simulator's error before and after calibration."""
    repeats = any(r.get("spread") for r in doc["runs"])
    head = ["trace", "policy", "measured p50 / p99 (ms)", "measured replica-s",
            *(["live repeats apart (p50, p99, replica-s)"] if repeats else []),
            *(f"{label} error, start / calibrated" for _, label in FIDELITY_METRICS)]
    rows = []
    for r in doc["runs"]:
        m = r["measured"]
        errs = [f"{r['errors_uncalibrated'][k]:+.0%} / **{r['errors_calibrated'][k]:+.0%}**"
                for k, _ in FIDELITY_METRICS]
        apart = ([", ".join(f"{r['spread'][k]:.0%}" for k, _ in FIDELITY_METRICS) if r.get("spread") else "-"]
                 if repeats else [])
        rows.append([r["trace"], f"`{r['policy']}`", f"{m['p50_ms']:,.0f} / {m['p99_ms']:,.0f}",
                     f"{m['replica_s']:,.0f}", *apart, *errs])
    return _table(head, rows)


def fidelity_summary(doc: Mapping[str, Any]) -> str:
    n = len(doc["runs"])
    within = ", ".join(f"{label} {doc['within_target'][k]} of {n}" for k, label in FIDELITY_METRICS)
    text = f"\n\nWithin {doc['target']:.0%} of the measurement after calibration: {within}."
    if "repeats_apart" in doc:
        apart = ", ".join(f"{label} {doc['repeats_apart'][k]}" for k, label in FIDELITY_METRICS)
        among = ", ".join(f"{label} {doc['between_repeats'][k]}" for k, label in FIDELITY_METRICS)
        text += (f" Runs whose live repeats are themselves more than {doc['target']:.0%} apart: {apart} of {n}; "
                 f"predictions between the repeats: {among} of {n}.")
    return fidelity_table(doc) + text + f" `{doc['command']}` ({doc['wall_s'] / 60:.0f} min a run)."


def demo_table(doc: Mapping[str, Any]) -> str:
    """``make demo``'s table (bench/demo.py), and the verdict line under it."""
    head = ["policy", "requests", "SLO attainment", "p50 (ms)", "p99 (ms)", "cost", "GPU-hours", "scale actions"]
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:,.1f}"

    rows = [[f"`{r['policy']}`", f"{r['requests']:,}", _pct(r["slo_attainment"]), ms(r["p50_ms"]), ms(r["p99_ms"]),
             _usd(r["cost_usd"]), f"{r['gpu_hours']:.2f}", str(r["scale_actions"])] for r in doc["rows"]]
    return _table(head, rows) + f"\n\n`{doc['verdict']}`"


def sections(res: Results) -> dict[str, str]:
    """The README's tables by marker NAME."""
    out = {f"heldout-{sc}": heldout_table(res.heldout[sc]) for sc in res.scenarios}
    if res.demo:
        out["demo"] = demo_table(res.demo)
    out["heldout-summary"] = heldout_summary(res)
    out["heldout-groups"] = group_summary(res)
    out["price"] = price_summary(res)
    if res.noguards:
        out["guards"] = guards_summary(res)
    if res.fidelity:
        out["fidelity"] = fidelity_summary(res.fidelity)
    return out


def _families() -> str:
    return ", ".join(f"`{f.name}`" for f in FAMILIES)


def document(res: Results) -> str:
    """The whole of ``docs/results.md``."""
    parts = [
        f"<!-- Generated by `{COMMAND}` (`make results`) from bench/results/. Do not edit: "
        "re-run the benchmarks and that command. -->",
        "",
        "# Benchmark results",
        "",
        f"Generated by `{COMMAND}` (`make results`) from the committed results in `bench/results/`.",
        "",
        "The held-out benchmark (`bench/heldout.py`, cases in `autotune/benchmark/cases.py`) runs every case, one "
        "hour of arrivals no policy trained on, under every policy and two clairvoyant plans on the same "
        f"arrivals. Case families: {_families()} (a scenario's own generator is left out of the generator "
        "families). A case is *kept* when its SLO attainment reaches the scenario's target; *after the warm-up* "
        "counts the requests arriving after the first 5 minutes, which every run spends growing the small initial "
        "fleet. Costs are sums over the cases named; `vs oracle` is over the cases where the oracle keeps the SLO, "
        "`vs oracle-startup` over those where it does. `oracle` knows the future and starts replicas instantly; "
        "`oracle-startup` knows it and pays the real start-up delays from the initial fleet. The simulator applies "
        "the live controller's guards, as `autotune control` does, unless a table says otherwise.",
        "",
        "## Summary",
        "",
        f"The recommended policy (`{RECOMMENDED}`) and the shipped trained policy (`policies/<scenario>.zip`) "
        "against Ray Serve's default autoscaler: cases kept at the SLO target among those `oracle-startup` keeps, "
        "and cost over all the cases:",
        "",
        heldout_summary(res),
        "",
        "## Price breakdown",
        "",
        "What start-up delay costs (`oracle-startup / oracle`), what insurance against a K x surge costs in "
        "hindsight (`oracle+crowd:K / oracle`: the oracle never holding less than the fleet a K x surge of the "
        "calm load needs), and what each policy pays beyond the plan it is compared with: `oracle+crowd:K` for a "
        "policy insured for a K x surge (`+crowd:K`, `+hold:K`, a trained policy sized `crowd`), "
        "`oracle-startup` for the others (`bench/price_breakdown.py`; over the cases where the oracle keeps "
        "the SLO):",
        "",
        price_summary(res),
    ]
    if res.noguards:
        parts += ["", "## What the live guards cost", "",
                  "The same held-out cases with the pools' bounds alone between a policy's decisions and the "
                  "cluster (`bench/heldout.py --guards none`), against the live guards (step limits, cooldowns, "
                  "the hold on missing metrics). The emulated built-in autoscalers run inside Ray Serve or "
                  "Kubernetes, not behind autotune's controller, so no guard applies to them in either run:", "",
                  guards_summary(res)]
    for sc in res.scenarios:
        h, p = res.heldout[sc], res.price[sc]
        parts += ["", f"## `{sc}`", "",
                  f"SLO target {h['slo_target']:.1%}. `{h['command']}`: {len(h['cases'])} cases in "
                  f"{h['wall_s']:,.0f} s; `{p['command']}`: {p['wall_s']:,.0f} s more.", "",
                  "### Held-out cases, per policy", "", heldout_table(h), ""]
        if h.get("by_group"):  # results written before the cases had groups have none
            parts += ["### Per traffic group", "",
                      "The same cases by traffic group (`autotune/benchmark/cases.py`; `llm` is never trained on, "
                      "a policy trained with `--set leave_out=GROUP` never saw GROUP): cases kept at the SLO "
                      "target, and cost over the group's cases against ray-default's:", "", group_table(h), ""]
        parts += ["### Price breakdown", "", price_table(p)]
        if by_group := price_group_table(p):
            parts += ["", "Cost against `ray-default`'s by traffic group, over the cases where the oracle keeps the "
                          "SLO:", "", by_group]
        if sc in res.noguards:
            g = res.noguards[sc]
            parts += ["", f"With the bounds alone (`{g['command']}`, {g['wall_s']:,.0f} s):", "", heldout_table(g)]
    if res.throughput is not None:
        parts += ["", "## Simulator throughput", "", throughput_text(res.throughput)]
    if res.side_by_side is not None:
        d = res.side_by_side
        parts += ["", "## Live side by side", "",
                  f"`{d['command']}` on scenario `{d['scenario']}` ({d['requests']:,} requests over "
                  f"{d['duration_s']:g} s; measured on a local Ray cluster, next to the simulator's prediction):",
                  "", side_by_side_table(d)]
    if res.fidelity is not None:
        f = res.fidelity
        parts += ["", "## Fidelity after calibration", "",
                  f"Scenario `{f['scenario']}` on a local Ray cluster (fake L4s, the emulated model), calibrated "
                  "from the cluster's own metrics, then three traces under three policies, each measured live and "
                  "predicted by the simulator on the starting and on the calibrated scenario "
                  f"(mean of {len(f['seeds'])} seeds; error = predicted / measured - 1):", "",
                  fidelity_summary(f)]
    return "\n".join(parts) + "\n"


MARKER = re.compile(r"(<!-- results:(?P<name>[A-Za-z0-9_-]+) -->)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)
OPENING = re.compile(r"<!-- results:(?P<name>[A-Za-z0-9_-]+) -->")


def rewrite(text: str, tables: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` with the body of every marker pair named in ``tables`` replaced; the names replaced.

    Markers named elsewhere are another generator's and stay as they are."""
    for m in OPENING.finditer(text):
        name = m["name"]
        if name in tables and f"<!-- /results:{name} -->" not in text[m.end():]:
            line = text.count("\n", 0, m.start()) + 1
            raise ReportError(f"line {line}: <!-- results:{name} --> has no <!-- /results:{name} --> after it")
    done: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in tables:
            return m.group(0)
        done.append(name)
        return f"{m.group(1)}\n{tables[name].strip()}\n{m.group(4)}"

    return MARKER.sub(sub, text), done


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as fh:  # newline="": every byte as it is, CRLF included
        return fh.read()


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def generate(folder: Path = RESULTS, docs: Path = DOCS, readme: Path | None = README,
             scenarios: Sequence[str] = SCENARIOS, guards_required: Sequence[str] = GUARDS_REQUIRED,
             say: Callable[[str], None] = print) -> list[str]:
    """Write ``docs`` and rewrite ``readme``'s marked tables; returns the README's NAMEs rewritten."""
    res = load(folder, scenarios, guards_required)
    write_text_atomic(docs, document(res))
    say(f"wrote {docs}")
    if readme is None or not readme.exists():
        return []
    old = _read(readme)
    new, done = rewrite(old, sections(res))
    if new != old:
        _write(readme, new)
    say(f"{readme.name}: " + (f"rewrote {', '.join(done)}" if done else "no results markers"))
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(RESULTS), help="the results folder (default: %(default)s)")
    ap.add_argument("--docs", default=str(DOCS), help="the generated page (default: %(default)s)")
    ap.add_argument("--readme", default=str(README), help="the README whose marked tables are rewritten")
    args = ap.parse_args(argv)
    try:
        generate(Path(args.results), Path(args.docs), Path(args.readme) if args.readme else None)
    except (MissingResult, ReportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
