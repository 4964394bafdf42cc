"""Sizing fleets by SLO capacity: the pure arithmetic every rule, the oracle and the RL actions share.

What a fleet carries within the SLO is measured once per scenario (by the
simulator: :mod:`autotune.sim.capacity`) and handed to a policy as a
:class:`Capacity`; nothing here runs a simulation, so policies never import the
simulator. Pooling matters: a replica carries more within a latency bound as
the fleet grows (on ``mixed-large`` one L4 carries 11.5 req/s of ViT-L/16 within
50 ms, sixteen carry 43 each), so fleets are sized with capacity by fleet size,
not a per-replica constant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from autotune.scenario import PoolRuntime, Scenario

# (fleet, batch per pool, the model's figure) -> the fleet's measured req/s within the SLO
MixFn = Callable[[Mapping[str, int], Mapping[str, int], float], float]


class Capacity(Protocol):
    """SLO capacity of one scenario's pools, as measured (or fitted, or looked up)."""

    def replica(self, pool: PoolRuntime, batch: int) -> float:
        """Req/s one replica sustains within the SLO in a small group (4 replicas): the RL load unit."""
        ...

    def fleet(self, pool: PoolRuntime, batch: int, up_to: int | None = None,
              dispersion: float = 1.0, swing: float = 0.0) -> tuple[float, ...]:
        """Req/s n replicas of ``pool`` sustain within the SLO, for n = 0..``up_to`` (default: its quota), under
        arrivals whose counts have index of dispersion ``dispersion`` (1: Poisson) and whose per-second rate
        swings with coefficient of variation ``swing`` (:mod:`autotune.core.burst`)."""
        ...

    def mixes(self) -> MixFn | None:
        """What a fleet mixing GPU types carries, or None where the scenario has one GPU type."""
        ...


def capacity_table(capacity: Capacity, scenario: Scenario) -> dict[str, dict[int, float]]:
    """Per pool and batch size, what one replica carries within the SLO."""
    return {p.name: {b: capacity.replica(p, b) for b in p.spec.batch_sizes} for p in scenario.runtime_pools()}


def fleet_size_limit(scenario: Scenario, pool: PoolRuntime) -> int:
    """The most replicas ``pool``'s GPU type can run across the scenario's pools: how far its curve must reach."""
    return sum(p.max_replicas for p in scenario.pools if p.instance == pool.spec.instance)




def gpu_groups(scenario: Scenario) -> dict[str, str]:
    """Pool name -> its GPU type: pools on the same GPU (spot and on-demand L4s) pool as one fleet."""
    return {p.name: p.instance for p in scenario.pools}




def pooled_capacity(fleet: Mapping[str, int], totals: Mapping[str, Sequence[float]],
                    groups: Mapping[str, str] | None = None, mixed: MixFn | None = None,
                    batch: Mapping[str, int] | None = None) -> float:
    """Req/s a fleet spread over several pools carries within the SLO.

    One router balances over every replica, so pools on the same GPU (``groups``,
    e.g. spot and on-demand L4s) pool like one fleet of their combined size: each
    replica counts at its pool's per-replica capacity for a fleet of the group's
    size (beyond its curve, at the curve's end). A fleet on more than one GPU type
    is measured by ``mixed`` at ``batch`` when both are given (:meth:`Capacity.mixes`);
    without them the groups are summed, each taken alone (the model, which is wrong
    both ways: see :mod:`autotune.sim.capacity`). Without ``groups`` every pool is its own group,
    which is the sum of each pool alone. Pools that carry nothing within the SLO are
    left out (they are never in a fleet this sizes).
    """
    serving = {name: n for name, n in fleet.items() if n and name in totals and totals[name][-1] > 0}
    size: dict[str, int] = {}
    for name, n in serving.items():
        g = groups[name] if groups else name
        size[g] = size.get(g, 0) + n
    have = 0.0
    for name, n in serving.items():
        curve = totals[name]
        k = min(size[groups[name] if groups else name], len(curve) - 1)
        have += n * curve[k] / k
    if mixed is not None and batch is not None and groups and len(size) > 1:
        return mixed(serving, batch, have)
    return have




def fill_fleet(needs: Sequence[float], order: Sequence[str], totals: Mapping[str, Sequence[float]],
               min_replicas: Mapping[str, int], max_replicas: Mapping[str, int],
               groups: Mapping[str, str] | None = None, mixed: MixFn | None = None,
               batch: Mapping[str, int] | None = None) -> dict[str, int]:
    """Cheapest pool first, each pool the fewest replicas at which the fleet carries that pool's need.

    ``needs[k]`` is the req/s the fleet must carry once ``order[k]`` is sized,
    with the pools before it as sized and the pools after it at their minimum
    (what those carry anyway is not bought twice); a pool at its quota leaves
    the rest to the next. The ``headroom`` family passes one need for all;
    the RL ``fill`` action, one per pool's headroom level.
    """
    fleet = {name: min_replicas[name] for name in order}

    def carried(name: str, n: int) -> float:
        fleet[name] = n
        return pooled_capacity(fleet, totals, groups, mixed, batch)

    for name, need in zip(order, needs, strict=True):
        if totals[name][-1] <= 0:  # serves nothing within the SLO: stays at its minimum
            continue
        lo, hi = min_replicas[name], max_replicas[name]
        if mixed is None:
            n = next((n for n in range(lo, hi + 1) if carried(name, n) >= need - 1e-6), hi)
        elif (at_lo := carried(name, lo)) >= need - 1e-6:
            n = lo
        elif (at_hi := carried(name, hi)) < need - 1e-6:
            # Even the quota falls short. A slow GPU beside fast ones can carry less than the fast ones
            # alone (the router still hands it its share): then adding it does harm, and it is not added.
            n = hi if at_hi > at_lo else lo
        else:  # a fleet that mixes GPUs is measured, so ask about few: the fewest that carry, by bisection
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if carried(name, mid) >= need - 1e-6 else (mid + 1, hi)
            n = lo
        fleet[name] = n
    return fleet




def replicas_for(need: float, totals: tuple[float, ...]) -> int:
    """Fewest replicas whose total in ``totals`` (by fleet size) covers ``need``; all of them if none does."""
    for n, have in enumerate(totals):
        if have >= need - 1e-6:
            return n
    return len(totals) - 1


