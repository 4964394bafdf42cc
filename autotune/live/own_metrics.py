"""The controller's own Prometheus metrics (prometheus-client, a private registry)."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from autotune.core.types import Decision, Observation


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter("autotune_decisions", "Control decisions taken", ["policy"], registry=r)
        self.actions = Counter("autotune_scale_actions", "Changes applied to the cluster", ["pool", "kind"],
                               registry=r)
        self.errors = Counter("autotune_errors", "Failed steps by cause", ["cause"], registry=r)
        self.guard_changes = Counter("autotune_guard_changes", "Decisions a guard changed", registry=r)
        self.observed = Gauge("autotune_observed_replicas", "Replicas seen, by state", ["pool", "state"], registry=r)
        self.target = Gauge("autotune_target_replicas", "Target replicas after the guards", ["pool"], registry=r)
        self.batch = Gauge("autotune_batch_size", "max_batch_size per pool", ["pool"], registry=r)
        self.cost = Gauge("autotune_estimated_usd_per_hour", "Target fleet price per hour", registry=r)
        self.slo = Gauge("autotune_slo_attainment", "Fraction on time in the last window", registry=r)
        self.rate = Gauge("autotune_arrival_rate", "Requests per second in the last window", registry=r)
        self.promotions = Counter("autotune_promotions", "Challengers promoted to run the cluster", registry=r)
        self.rollbacks = Counter("autotune_rollbacks", "Promotions rolled back on an SLO regression", registry=r)
        self.offers = Counter("autotune_offers", "Optimizer offers, by whether a shadow period began",
                              ["accepted"], registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def record(self, policy: str, obs: Observation, applied: Decision, batch: dict[str, int],
               prices: dict[str, float], guard_changed: bool) -> None:
        self.decisions.labels(policy).inc()
        if guard_changed:
            self.guard_changes.inc()
        for p in obs.pools:
            for state in ("running", "starting", "pending", "draining"):
                self.observed.labels(p.name, state).set(getattr(p, state))
        usd = 0.0
        for name, n in applied.replicas.items():
            self.target.labels(name).set(n)
            usd += n * prices.get(name, 0.0)
        for name, b in batch.items():
            self.batch.labels(name).set(b)
        self.cost.set(usd)
        if math.isfinite(obs.slo_attainment):
            self.slo.set(obs.slo_attainment)
        self.rate.set(obs.arrival_rate)
