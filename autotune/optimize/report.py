"""What ``autotune optimize`` writes: ``report.csv`` (a row per candidate x part), ``report.md`` (the tables),
``report.png`` (cost against SLO attainment, one marker per candidate, a panel per part) and a rich table."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from autotune.fileio import atomic_path, write_atomic, write_text_atomic
from autotune.optimize.choose import Choice, Figure

COLUMNS = ("candidate", "part", "cost_usd", "usd_per_hour", "slo_attainment", "worst_slice_slo", "meets_target",
           "requests", "lost", "scale_actions", "seeds", "chosen")


def rows(figs: Sequence[Figure], target: float, chosen: str) -> list[dict[str, Any]]:
    return [{"candidate": f.candidate, "part": f.part, "cost_usd": f.cost_usd, "usd_per_hour": f.usd_per_hour,
             "slo_attainment": f.slo_attainment, "worst_slice_slo": f.worst_slice_slo,
             "meets_target": f.meets(target), "requests": f.requests,
             "lost": f.lost, "scale_actions": f.scale_actions, "seeds": f.seeds, "chosen": f.candidate == chosen}
            for f in figs]


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def write_csv(path: Path, table: list[dict[str, Any]]) -> None:
    def writer(fh: Any) -> None:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in table:
            w.writerow([_fmt(r[c]) for c in COLUMNS])

    write_atomic(path, writer)


def compare(report_part: Sequence[Figure], chosen: str, against: str) -> dict[str, Any] | None:
    """The chosen candidate against another on the report part: cost ratio and both SLOs."""
    by = {f.candidate: f for f in report_part}
    if chosen not in by or against not in by:
        return None
    a, b = by[chosen], by[against]
    return {"against": against, "cost_ratio": a.cost_usd / b.cost_usd if b.cost_usd else math.nan,
            "chosen_slo": a.slo_attainment, "against_slo": b.slo_attainment,
            "slo_at_least": a.slo_attainment >= b.slo_attainment - 1e-12}


def _md_table(figs: Sequence[Figure], target: float, chosen: str) -> list[str]:
    lines = ["| candidate | cost ($) | $/h | SLO attainment | meets target | lost | scale actions |",
             "|---|---:|---:|---:|:---:|---:|---:|"]
    for f in figs:
        name = f"**{f.candidate}** (chosen)" if f.candidate == chosen else f.candidate
        lines.append(f"| {name} | {f.cost_usd:,.2f} | {f.usd_per_hour:,.2f} | {f.slo_attainment:.3%} | "
                     f"{'yes' if f.meets(target) else 'no'} | {f.lost:,} | {f.scale_actions:,.0f} |")
    return lines


def markdown(header: dict[str, Any], candidates: Sequence[dict[str, Any]], choose_part: Sequence[Figure],
             report_part: Sequence[Figure], choice: Choice, target: float,
             comparisons: Sequence[dict[str, Any]]) -> str:
    lines = [f"# autotune optimize: {header['scenario']}", ""]
    lines += [f"- {k}: {v}" for k, v in header.items() if k != "scenario"]
    lines += ["", "## Candidates", ""]
    lines += [f"- `{c['name']}`: {c['origin']}" for c in candidates]
    lines += ["", f"## Chosen: `{choice.chosen}`", "", f"{choice.reason}.", ""]
    for c in comparisons:
        lines.append(f"- on the report part, {c['cost_ratio']:.2f}x the cost of `{c['against']}` at "
                     f"{c['chosen_slo']:.3%} SLO attainment against its {c['against_slo']:.3%}")
    lines += ["", "## Choose part (the choice saw only this)", "", *_md_table(choose_part, target, choice.chosen)]
    lines += ["", "## Report part (never seen by the choice)", "", *_md_table(report_part, target, choice.chosen)]
    return "\n".join(lines) + "\n"


def rich_table(title: str, choose_part: Sequence[Figure], report_part: Sequence[Figure], target: float,
               chosen: str) -> Table:
    table = Table(title=title)
    for c in ("candidate", "choose $", "choose SLO", "report $", "report SLO"):
        table.add_column(c, justify="left" if c == "candidate" else "right")
    later = {f.candidate: f for f in report_part}
    for f in choose_part:
        g = later.get(f.candidate)
        style = "bold green" if f.candidate == chosen else ("" if f.meets(target) else "dim")
        table.add_row(f.candidate + (" *" if f.candidate == chosen else ""), f"{f.cost_usd:,.2f}",
                      f"{f.slo_attainment:.3%}", f"{g.cost_usd:,.2f}" if g else "-",
                      f"{g.slo_attainment:.3%}" if g else "-", style=style)
    return table


def plot(path: Path, choose_part: Sequence[Figure], report_part: Sequence[Figure], target: float,
         chosen: str, title: str) -> None:
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(12, 5))
    axes = fig.subplots(1, 2)
    for ax, figs, name in ((axes[0], choose_part, "choose part"), (axes[1], report_part, "report part")):
        for f in figs:
            mine = f.candidate == chosen
            ax.scatter([f.slo_attainment * 100], [f.usd_per_hour], s=90 if mine else 40,
                       marker="*" if mine else "o", color="tab:green" if mine else "tab:blue", zorder=3)
            ax.annotate(f.candidate, (f.slo_attainment * 100, f.usd_per_hour), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        ax.axvline(target * 100, color="tab:red", ls="--", lw=1, label=f"target {target:.2%}")
        ax.set_xlabel("SLO attainment (%)")
        ax.set_ylabel("cost ($ per hour)")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")


def write_markdown(path: Path, text: str) -> None:
    write_text_atomic(path, text)
