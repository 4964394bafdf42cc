"""``autotune/RayServeCluster-v0``: the simulator as a gymnasium env, one step per control interval.

The loop is :func:`autotune.sim.run.simulate`'s, step for step: observe the
window, decode the action and guard it with the same :func:`autotune.core.step`
(the live controller's guards by default, so a policy learns under the guards
it will run under), apply, run the next window; the last window (ending
``drain_s`` after the last arrival) gets no decision and ends the episode with
``ClusterSim.finish()``. So the per-step ``info`` costs and on-time/missed
counts add up to the what-if summary of the same episode (tests/rl/test_env.py
checks it). The spaces and the reward are in :class:`RayServeClusterEnv`'s
docstring and in docs/training.md.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from autotune.core import LIVE_GUARDS, GuardConfig, Guards, LoopState, step
from autotune.core.types import Decision, Observation, PolicyState
from autotune.policies.crowd import CROWD_DEFAULT
from autotune.policies.sizing import Capacity
from autotune.rl.actions import action_mask, action_nvec, decode_action
from autotune.rl.observation import (
    GUARD_CALM_S,
    FeatureContext,
    Sizing,
    features,
    initial_state,
    make_context,
    update_state,
)
from autotune.rl.workloads import Episode, check_leave_out, sample_training_episode
from autotune.scenario import Scenario, load_scenario
from autotune.sim.capacity import measure_capacity
from autotune.sim.cluster import ClusterSim, Window
from autotune.workload.arrivals import Arrivals, build_arrivals


def ideal_usd_per_hour(ctx: FeatureContext, rate: float) -> float:
    """Dollars per hour of just enough SLO capacity for ``rate``: fractional replicas, cheapest first, within quotas.

    The reward's cost unit. Without quotas it is ``rate`` x the best price per req/s; where a pool's quota
    binds (``mixed-large``: the L4s cannot carry the peak), the rest is priced on the next pool, so paying for
    the A100 the load needs does not look like waste.
    """
    usd, need = 0.0, rate
    for i in ctx.cost_order():
        cap = max(ctx.capacity[i])
        if need <= 0 or cap <= 0:
            continue
        n = min(need / cap, float(ctx.max_replicas[i]))
        usd += n * ctx.price[i]
        need -= n * cap
    return usd


def reward_weights(scenario: Scenario) -> dict[str, float]:
    """The weights as the reward uses them (reported in model cards and evaluations)."""
    r = scenario.reward
    return {"cost_weight": r.cost_weight, "slo_weight": r.slo_weight, "churn_weight": r.churn_weight,
            "slo_cap": r.slo_cap,
            "slo_scale": 1.0 / (1.0 - scenario.slo.target) if scenario.slo.target < 1 else 1000.0}


class _Decode:
    """The network's action as a policy, so the env steps through :func:`autotune.core.step` as every loop does."""

    name = "rl"

    def __init__(self, action: np.ndarray, ctx: FeatureContext) -> None:
        self.action, self.ctx = action, ctx

    def initial_state(self) -> PolicyState:
        return initial_state(self.ctx)

    def decide(self, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
        return decode_action(self.action, state, self.ctx)


class RayServeClusterEnv(gym.Env):
    """Autoscale a simulated Ray Serve deployment: per pool a headroom level move and a batch size.

    ## Description

    One step is one control interval (``control_interval_s``, 10 s on the cloud
    scenarios). Every pool holds a headroom *level* (an index into
    ``observation.LEVELS``: 0, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.2, 1.3, 1.45,
    1.6, 1.8, 2.0, 2.5, 3.0, 4.0), kept in the policy state. Pools are filled
    cheapest first (dollars per req/s of SLO capacity): a pool at level L gets
    the fewest replicas whose SLO capacity covers L x the sizing load beyond
    what the cheaper pools carry, within its quota. The sizing load is the
    ``predictive`` rule's size (``sizing="predictive"``), or the larger of that
    and ``crowd_factor`` x the calm load, never less than the predictive size
    (``sizing="crowd"``). At level 1.0 everywhere the policy is that rule.

    ## Action Space

    ``MultiDiscrete([5, B] * n_pools)``, ``B`` the most batch sizes of any pool.
    For pool ``i``:

    | Num    | Action                                                               |
    |--------|----------------------------------------------------------------------|
    | 2i     | level move: 0 keep, 1 up one, 2 down one, 3 up three, 4 down three   |
    | 2i + 1 | batch size: index into the pool's ``batch_sizes``                    |

    Levels stop at the ladder's ends; level 0 means the pool's ``min_replicas``.
    ``action_masks()`` forbids batch sizes a pool lacks or that cannot meet the
    SLO. With a burst guard, levels stay at >= 1.0 and batch sizes at the
    pool's best until ``guard_calm_s`` pass without a ``burst_guard`` x burst.

    ## Observation Space

    ``Box(-10, 10, (23 + [sizing == "crowd"] + 14 * n_pools,), float32)``.
    Loads are over ``scale`` = max(the ``headroom`` forecast, 5% of the best
    replica's SLO capacity), capacities are req/s within the SLO:

    | Num     | Observation                                                       | Min | Max |
    |---------|-------------------------------------------------------------------|-----|-----|
    | 0-5     | arrival rate of the last 6 windows / scale                        | 0   | 10  |
    | 6       | log(1 + forecast / best replica capacity)                         | 0   | 10  |
    | 7       | log(1 + 10 x forecast / best replica capacity) / 4                | 0   | 10  |
    | 8       | running replicas' capacity / scale                                | 0   | 5   |
    | 9       | target replicas' capacity / scale                                 | 0   | 5   |
    | 10      | queued requests / (scale x interval)                              | 0   | 5   |
    | 11-13   | window p50, p95, p99 latency / SLO latency                        | 0   | 5   |
    | 14      | 1 - window SLO attainment                                         | 0   | 1   |
    | 15      | dropped / arrivals                                                | 0   | 1   |
    | 16-17   | sin, cos of the time of day (the scenario's ``period_s`` a day)   | -1  | 1   |
    | 18      | 5-minute peak rate / scale                                        | 0   | 5   |
    | 19      | 5-minute coefficient of variation of the rate                     | 0   | 3   |
    | 20      | windows of history so far / 30                                    | 0   | 1   |
    | 21      | the predictive rule's margin / 4                                  | 0   | 1   |
    | 22      | the predictive size / scale                                       | 0   | 5   |
    | 23      | ``crowd`` only: crowd_factor x calm load / scale                  | 0   | 5   |

    then, for each pool in scenario order, 14 more:

    | Num | Observation                                                           | Min | Max |
    |-----|-----------------------------------------------------------------------|-----|-----|
    | +0  | running replicas' capacity / scale                                    | 0   | 5   |
    | +1  | starting replicas' capacity / scale                                   | 0   | 5   |
    | +2  | pending replicas' capacity / scale                                    | 0   | 5   |
    | +3  | draining replicas' capacity / scale                                   | 0   | 5   |
    | +4  | target replicas / max_replicas                                        | 0   | 1   |
    | +5  | batch size index / (number of batch sizes - 1)                        | 0   | 1   |
    | +6  | ongoing requests / (running replicas x batch size)                    | 0   | 5   |
    | +7  | queued requests / (scale x interval)                                  | 0   | 5   |
    | +8  | recent preemptions (decaying by 0.9 a window)                         | 0   | 3   |
    | +9  | 1 if spot                                                             | 0   | 1   |
    | +10 | dollars per req/s over the cheapest pool's                            | 1   | 5   |
    | +11 | best replica capacity / the cheapest pool's                           | 0   | 5   |
    | +12 | quota's capacity / scale                                              | 0   | 5   |
    | +13 | headroom level / 4                                                    | 0   | 1   |

    ## Rewards

    Per step, with the weights of the scenario's ``reward:`` block::

        r = - cost_weight  * cost_usd / ideal_usd
            - slo_weight   * min(excess / expected / (1 - slo.target), slo_cap)
            - churn_weight * pools_resized

    ``ideal_usd`` is what the window would cost at the episode's mean load on
    the most cost-efficient pool at its best batch size, spilling to the next
    pools where quotas bind (at least one replica; :func:`ideal_usd_per_hour`),
    and ``expected`` the mean number of arrivals per window; both make the
    reward independent of the load level. ``excess`` counts requests finished
    over the SLO plus dropped ones beyond the window's error budget ((1 -
    target) of its arrivals), so a window within the SLO costs nothing.
    Dividing by ``1 - target`` makes missing another 1% of a window (at a 99%
    SLO) cost as much as paying the ideal fleet's price once more; the cap
    (``slo_cap``, 10 unless the scenario or ``--set slo_cap=`` says otherwise)
    keeps one overloaded window (a flash crowd, a backlog) from swamping an
    episode's return. At 10 it also makes a request missed in a deeply
    overloaded window far cheaper than one missed at the margin, so PPO can
    learn to risk bursts.

    ## Starting State

    Every level at 1.0. ``randomize=True`` draws the episode from the training
    distribution (:mod:`autotune.rl.workloads`) and starts the cheapest pool at
    0.5-2x the replicas its opening load needs; ``False`` replays the
    scenario's own workload (``build_arrivals(scenario, seed)``) from its
    initial fleet. ``reset(options={"arrivals": Arrivals, "sim_seed": int})``
    pins one episode.

    ## Episode End

    Terminated after the window ending ``drain_s`` past the last arrival; never
    truncated. Requests unfinished then count as missed.

    ## Arguments

    ``scenario`` (name or Scenario), ``randomize``, ``episode_s``,
    ``reward_weights_override``, the decoding (``sizing``, ``crowd_factor``,
    ``burst_guard``, ``guard_calm_s``, ``mixed_capacity``), ``guards`` (None:
    unguarded), ``capacity`` (default: measured for the scenario) and ``leave_out`` (a traffic group
    randomized episodes never come from).
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario: str | Scenario = "default", randomize: bool = True,
                 episode_s: float | None = None, reward_weights_override: dict[str, float] | None = None,
                 sizing: Sizing = "predictive", crowd_factor: float = CROWD_DEFAULT, burst_guard: float = 0.0,
                 guard_calm_s: float = GUARD_CALM_S, mixed_capacity: str = "measured",
                 guards: GuardConfig | None = LIVE_GUARDS, capacity: Capacity | None = None,
                 leave_out: str | None = None) -> None:
        check_leave_out(leave_out)
        self.leave_out = leave_out
        self.scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
        if reward_weights_override:
            self.scenario = self.scenario.model_copy(
                update={"reward": self.scenario.reward.model_copy(update=reward_weights_override)})
        self.guards = Guards(tuple(self.scenario.pools), guards)
        if mixed_capacity not in ("measured", "added"):
            raise ValueError(f"mixed_capacity must be 'added' or 'measured', got {mixed_capacity!r}")
        self.ctx = make_context(self.scenario, capacity or measure_capacity(self.scenario), sizing=sizing,
                                crowd_factor=crowd_factor, burst_guard=burst_guard, guard_calm_s=guard_calm_s,
                                measure_mixes=mixed_capacity == "measured")
        self.randomize = randomize
        self.episode_s = episode_s
        self.weights = reward_weights(self.scenario)
        self.observation_space = spaces.Box(-10.0, 10.0, (self.ctx.obs_size,), np.float32)
        self.action_space = spaces.MultiDiscrete(action_nvec(self.ctx))
        self._obs: Observation | None = None
        self._state: dict[str, Any] = {}
        self.sim: ClusterSim | None = None
        self.episode: Episode | None = None

    # -- episode setup -------------------------------------------------------
    def _episode(self, options: dict[str, Any]) -> tuple[Episode, int]:
        sim_seed = int(options.get("sim_seed", self.np_random.integers(0, 2**31)))
        if "arrivals" in options:
            arr: Arrivals = options["arrivals"]
            return Episode(arr, arr.source, float(options.get("time_offset_s", 0.0))), sim_seed
        if self.randomize:
            duration = self.episode_s or self.scenario.training.episode_s
            return sample_training_episode(self.scenario, self.np_random, duration, self.ctx.day_s,
                                           self.leave_out), sim_seed
        arr = build_arrivals(self.scenario, sim_seed)
        return Episode(arr, arr.source), sim_seed

    def _random_initial_fleet(self, arr: Arrivals) -> Scenario:
        """Start training episodes from a fleet sized 0.5-2x for the opening load, not the fixed initial one.

        A fixed small fleet meeting a high load would open every episode with
        minutes of unavoidable misses (145 s to add capacity); random warm
        starts also teach the policy to right-size from any state.
        """
        ctx = self.ctx
        best = ctx.cost_order()[0]
        opening = float(np.sum(arr.times < 60.0)) / 60.0
        n = int(round(self.np_random.uniform(0.5, 2.0) * opening / max(ctx.capacity[best])))
        pools = list(self.scenario.pools)
        p = pools[best]
        pools[best] = p.model_copy(update={"initial_replicas": min(max(n, p.min_replicas), p.max_replicas)})
        return self.scenario.model_copy(update={"pools": pools})

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.episode, sim_seed = self._episode(options or {})
        arr = self.episode.arrivals
        scenario = self.scenario
        if self.randomize and "arrivals" not in (options or {}):
            scenario = self._random_initial_fleet(arr)
        self.sim = ClusterSim(scenario, arr, sim_seed)
        self._end = arr.duration_s + self.scenario.drain_s
        self._step_s = self.scenario.control_interval_s
        self._t = 0.0
        self._expected = max(arr.mean_rate * self._step_s, 1.0)
        floor = max(min(p for p, c in zip(self.ctx.price, self.ctx.capacity, strict=False) if max(c) > 0),
                    sum(m * p for m, p in zip(self.ctx.min_replicas, self.ctx.price, strict=False)))
        self._ideal_usd = max(ideal_usd_per_hour(self.ctx, arr.mean_rate), floor) * self._step_s / 3600.0
        self._state = initial_state(self.ctx)
        self._state["time_offset_s"] = self.episode.time_offset_s
        self._last_change: dict[str, float] = {}
        self._on_time_total = self._missed_total = 0
        # The first window runs before any decision; its cost and requests are
        # carried into the first step so per-step sums cover the whole episode.
        self._carry: dict[str, float] = {"cost_usd": 0.0, "on_time": 0, "missed": 0, "arrivals": 0}
        w = self._advance()
        self._carry = self._counts(w)
        return self._features(), {"episode": self.episode.label}

    def _advance(self) -> Window:
        assert self.sim is not None
        self._t = min(self._t + self._step_s, self._end)
        w = self.sim.run_until(self._t)
        assert w.obs is not None
        self._obs = w.obs
        self._state = update_state(self._state, w.obs, self.ctx)
        return w

    def _counts(self, w: Window) -> dict[str, float]:
        on_time = int(np.sum(w.latency_ms <= self.scenario.slo.latency_ms))
        missed = w.latency_ms.size - on_time + w.dropped + w.timed_out  # a request its client gave up on is missed
        return {"cost_usd": w.cost_usd, "on_time": on_time, "missed": int(missed), "arrivals": w.arrivals}

    def _features(self) -> np.ndarray:
        assert self._obs is not None
        return features(self._obs, self._state, self.ctx)

    # -- gym API -------------------------------------------------------------
    def action_masks(self) -> np.ndarray:
        return action_mask(self.ctx)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self.sim is not None and self._obs is not None, "call reset() first"
        done, loop = step(_Decode(np.asarray(action), self.ctx), self._obs, LoopState(self._state, self._last_change),
                          self.guards)
        self._state, self._last_change = loop.policy, dict(loop.last_change_s)
        before = self.sim.targets()
        seen = self.sim.windows[-1]  # recorded on the window decided on, as simulate() does
        changed = self.sim.apply(done.applied)
        seen.decision, seen.applied, seen.guard_notes, seen.changed = done.decision, done.applied, done.notes, changed
        resized = sum(1 for k, v in self.sim.targets().items() if v != before[k])
        w = self._advance()
        info = self._counts(w)
        for k, v in self._carry.items():
            info[k] += v
        self._carry = {k: 0 for k in self._carry}
        terminated = self._t >= self._end - 1e-9
        if terminated:
            self.sim.finish()
            # Requests still unfinished at the end are misses, as in SimResult.summary().
            n = len(self.sim.arrivals)
            info["missed"] = n - self._on_time_total - self._missed_total - info["on_time"]
        self._on_time_total += int(info["on_time"])
        self._missed_total += int(info["missed"])
        wt = self.weights
        cost_term = wt["cost_weight"] * info["cost_usd"] / self._ideal_usd
        # Misses within the window's error budget (1 - target of its arrivals) are free.
        excess = max(0.0, info["missed"] - (1.0 - self.scenario.slo.target) * info["arrivals"])
        slo_term = wt["slo_weight"] * min(excess / self._expected * wt["slo_scale"], wt["slo_cap"])
        churn_term = wt["churn_weight"] * resized
        info.update(changed=changed, resized=resized, cost_term=cost_term, slo_term=slo_term, churn_term=churn_term)
        reward = -(cost_term + slo_term + churn_term)
        return self._features(), float(reward), terminated, False, info
