"""The actuator's plan and calls against a recorded Serve API (no cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autotune.core.types import Decision
from autotune.live.actuator import DryRun, ServeActuator
from autotune.live.serve_state import app_state

DATA = Path(__file__).parent / "data"
APP = "live-demo"


class RecordingAPI:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def update_deployments(self, app: str, changes: dict[str, dict[str, Any]]) -> None:
        self.calls.append(("update", changes))

    def scale(self, app: str, deployment: str, replicas: int) -> None:
        self.calls.append(("scale", (deployment, replicas)))


def test_queue_cap_goes_in_the_declarative_update_with_the_intended_replicas() -> None:
    st = app_state(json.loads((DATA / "serve_details.json").read_text()), APP)
    assert st is not None
    d = st.deployments["l4"]
    api = RecordingAPI()
    want = d.target + 1
    acts = ServeActuator(api, APP).apply(Decision({"l4": want}, "t", max_queued={"l4": 30}), st)  # type: ignore[arg-type]
    assert acts == [f"scale l4: {d.target} -> {want}", "max_queued l4: -1 -> 30"]
    update = [c for kind, c in api.calls if kind == "update"]
    assert update == [{"l4": {"num_replicas": want, "max_queued_requests": 30}}]
    assert ("scale", ("l4", want)) in api.calls
    # Already at that cap: nothing to send.
    api2 = RecordingAPI()
    assert ServeActuator(api2, APP).apply(Decision({"l4": d.target}, "t", max_queued={"l4": -1}), st) == []  # type: ignore[arg-type]
    assert api2.calls == []
    assert DryRun().apply(Decision({}, "t", max_queued={"l4": 5}), st) == ["(dry run) max_queued l4: -1 -> 5"]
