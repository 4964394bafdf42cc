"""The choice: per candidate and part, the grid's rows summed; the cheapest candidate meeting the target on the
choose part. The report part's rows play no part in it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    """One candidate on one part: cost per seed (mean over seeds), SLO attainment over every scored request."""

    candidate: str
    part: str
    cost_usd: float
    usd_per_hour: float
    slo_attainment: float
    requests: int  # per seed
    lost: int  # dropped or timed out, per seed (mean)
    scale_actions: float  # per seed (mean)
    seeds: int
    worst_slice_slo: float = math.nan  # the lowest of its slices' SLO attainment (each over its seeds)

    def meets(self, target: float) -> bool:
        """The target met over the part and on every slice of it: a policy meeting it only on average, by
        trading one slice's misses for another's margin, is not relied on to meet it on the next."""
        worst = self.slo_attainment if math.isnan(self.worst_slice_slo) else self.worst_slice_slo
        return not math.isnan(self.slo_attainment) and min(self.slo_attainment, worst) >= target - 1e-12


def figures(rows: Sequence[Row], candidates: Sequence[str], part: str) -> list[Figure]:
    out = []
    for name in candidates:
        mine = [r for r in rows if r["candidate"] == name and r["part"] == part]
        if not mine:
            continue
        seeds = len({r["seed"] for r in mine})
        n = sum(r["requests"] for r in mine)
        cost = sum(r["cost_usd"] for r in mine) / seeds
        hours = sum(r["scored_s"] for r in mine) / seeds / 3600.0
        per_slice = []
        for k in sorted({r["slice"] for r in mine}):
            rs = [r for r in mine if r["slice"] == k]
            m = sum(r["requests"] for r in rs)
            if m:
                per_slice.append(sum(r["on_time"] for r in rs) / m)
        out.append(Figure(name, part, cost, cost / hours if hours else math.nan,
                          sum(r["on_time"] for r in mine) / n if n else math.nan, n // seeds,
                          round(sum(r["lost"] for r in mine) / seeds), sum(r["scale_actions"] for r in mine) / seeds,
                          seeds, min(per_slice, default=math.nan)))
    return out


@dataclass(frozen=True)
class Choice:
    chosen: str
    met: bool  # whether it met the target on the choose part (if none did: the highest SLO)
    reason: str


def choose(choose_part: Sequence[Figure], target: float) -> Choice:
    """The cheapest candidate meeting ``target`` on the choose part (over it and on each of its slices); ties go
    to the earlier candidate. If none meets it, the one with the highest SLO attainment (then the cheaper)."""
    if not choose_part:
        raise ValueError("no candidate was evaluated")
    kept = [f for f in choose_part if f.meets(target)]
    if kept:
        best = min(kept, key=lambda f: f.cost_usd)
        return Choice(best.candidate, True, f"cheapest of {len(kept)} candidates meeting the {target:.2%} target "
                                            f"on the choose part and on each of its slices")
    best = max(choose_part, key=lambda f: (-1.0 if math.isnan(f.slo_attainment) else f.slo_attainment,
                                           -f.cost_usd))
    return Choice(best.candidate, False, f"no candidate met the {target:.2%} target on the choose part; "
                                         f"chose the highest SLO attainment")
