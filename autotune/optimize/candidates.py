"""The candidate family: what ``autotune optimize`` may choose, as plain data a Ray worker can rebuild.

- the rules: ``hpa``, ``predictive``, and ``predictive`` insured against a surprise crowd at each surge K of the
  ladder, as ``predictive+crowd:K`` (never below the fleet a K x surge of the calm load needs) and
  ``predictive+hold:K`` (that fleet and no more while it carries the load);
- ``ray-default``, Ray Serve's autoscaler with the scenario's settings;
- the shipped trained policy ``policies/<scenario>.zip``, if there is one;
- ``ray-tuned``: Ray's autoscaler knobs re-tuned on the choose part (Ray Tune, :mod:`.retune`);
- ``fine-tuned``: the shipped policy trained further on the choose part (PPO, :mod:`.finetune`).

A candidate is a registry spec (``kind="spec"``), a Ray autoscaler config (``"ray"``) or a trained policy's zip
and model card as bytes and text (``"zip"``), so a worker on another machine needs no file of this one.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from autotune.core.types import Policy
from autotune.paths import POLICIES
from autotune.policies.sizing import Capacity
from autotune.scenario import Scenario

Kind = Literal["spec", "ray", "zip"]
LADDER = (2.0, 3.0)


@dataclass(frozen=True)
class Candidate:
    name: str
    kind: Kind
    spec: str = ""  # kind spec: the registry spec; kind zip: where the zip came from (shown, not read by workers)
    ray_autoscaler: dict[str, Any] = field(default_factory=dict)  # kind ray
    zip_bytes: bytes = b""  # kind zip
    card_text: str = ""  # kind zip
    origin: str = ""  # one line: what it is

    def build(self, scenario: Scenario, capacity: Capacity | None = None) -> Policy:
        from autotune.registry import make_policy

        if self.kind == "spec":
            return make_policy(self.spec, scenario, capacity)
        if self.kind == "ray":
            from autotune.policies.ray_default import RayDefaultPolicy
            from autotune.scenario import RayAutoscalerSpec

            return RayDefaultPolicy(tuple(scenario.pools), RayAutoscalerSpec(**self.ray_autoscaler), name=self.name)
        from autotune.rl.policy import load_policy

        pol = load_policy(self.materialize(), scenario, capacity)
        pol.name = self.name
        return pol

    def materialize(self) -> Path:
        """The zip and its card in a private temporary folder named by the zip's sha256 (once per process)."""
        digest = hashlib.sha256(self.zip_bytes).hexdigest()[:16]
        stem = Path(self.spec).stem or "policy"
        folder = Path(tempfile.gettempdir()) / f"autotune-candidate-{digest}"
        path = folder / f"{stem}.zip"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:  # whole files or none, with concurrent workers
                (Path(tmp) / path.name).write_bytes(self.zip_bytes)
                (Path(tmp) / f"{stem}.json").write_text(self.card_text)
                (Path(tmp) / f"{stem}.json").replace(path.with_suffix(".json"))
                (Path(tmp) / path.name).replace(path)
        return path


def spec_candidate(spec: str, origin: str) -> Candidate:
    return Candidate(spec, "spec", spec=spec, origin=origin)


def zip_candidate(name: str, path: str | Path, origin: str) -> Candidate:
    path = Path(path)
    return Candidate(name, "zip", spec=str(path), zip_bytes=path.read_bytes(),
                     card_text=path.with_suffix(".json").read_text(), origin=origin)


def ray_candidate(name: str, config: dict[str, Any], origin: str) -> Candidate:
    return Candidate(name, "ray", ray_autoscaler=dict(config), origin=origin)


def shipped_zip(scenario: Scenario) -> Path | None:
    path = POLICIES / f"{scenario.name}.zip"
    return path if path.exists() and path.with_suffix(".json").exists() else None


def rule_candidates(scenario: Scenario, ladder: Sequence[float] = LADDER) -> list[Candidate]:
    """ray-default, hpa, predictive with its insurance ladder, and the shipped policy if there is one."""
    out = [spec_candidate("ray-default", "Ray Serve's autoscaler, the scenario's settings"),
           spec_candidate("hpa", "Kubernetes HPA on ongoing requests"),
           spec_candidate("predictive", "autotune's rule: forecast a start-up ahead, size with a learnt margin")]
    for k in ladder:
        out.append(spec_candidate(f"predictive+crowd:{k:g}", f"predictive, never below a {k:g}x surge's fleet"))
        out.append(spec_candidate(f"predictive+hold:{k:g}", f"predictive holding a {k:g}x surge's fleet, no more"))
    shipped = shipped_zip(scenario)
    if shipped is not None:
        where = shipped.relative_to(POLICIES.parent)
        out.append(zip_candidate("shipped", shipped, f"the shipped trained policy {where}"))
    return out


def describe(c: Candidate) -> dict[str, Any]:
    """The candidate as the report and ``chosen.json`` name it."""
    row: dict[str, Any] = {"name": c.name, "kind": c.kind, "origin": c.origin}
    if c.kind == "spec":
        row["spec"] = c.spec
    elif c.kind == "ray":
        row["ray_autoscaler"] = c.ray_autoscaler
    else:
        row["zip"] = c.spec
        row["sha256"] = json.loads(c.card_text).get("sha256")
    return row
