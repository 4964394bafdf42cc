"""``autotune control --optimize-every``: the controller re-chooses its policy on its own traffic, live.

Against a real local Ray Serve (fake GPUs, the emulated model): the controller starts on an expensive static
fleet, records the traffic, runs ``autotune optimize`` on it in a separate process, shadows the cheaper
challenger the optimizer offers, promotes it, and the cluster follows the new champion.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from autotune.live.loadgen import replay
from autotune.live.localray import LocalRay, free_port
from tests.live.conftest import Background, constant_load, read_jsonl, wait_for
from tests.live.test_real_cluster import Running, deploy, pool

pytestmark = pytest.mark.integration


def test_a_cheaper_challenger_is_shadowed_promoted_and_runs_the_cluster(ray_cluster: LocalRay,
                                                                        tmp_path: Path) -> None:
    deploy(ray_cluster, "selfopt")
    log, port = tmp_path / "decisions.jsonl", free_port()
    ctl = Running(ray_cluster, "--app", "selfopt", "--policy", "static:6", "--interval", "3", "--log", str(log),
                  "--metrics-port", str(port), "--max-step-down", "10", "--down-cooldown", "0",
                  "--optimize-every", "30s", "--shadow", "9s", "--watch", "600s",
                  "--optimize-dir", str(tmp_path / "opt"),
                  "--optimize-args", "--local --no-tune --fine-tune-steps 0 --seeds 1 --slice-minutes 0 --ladder 2")
    try:
        load = Background(replay, ray_cluster.http_url, constant_load(10.0, 200.0))
        assert wait_for(lambda: pool(ray_cluster, "selfopt").target == 6, 40), "the champion's fleet never stood"

        def events() -> list[str]:
            return [r.get("event", "") for r in read_jsonl(log)] if log.exists() else []

        assert wait_for(lambda: "promotion" in events() or "rejected" in events(), 180), \
            f"no promotion: {[e for e in events() if e != 'decision']}"
        assert wait_for(lambda: pool(ray_cluster, "selfopt").target < 6, 30), "the new champion never acted"
        own = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        load.value(300)
    finally:
        ctl.finish()
    recs = read_jsonl(log)
    kinds = [r["event"] for r in recs]
    assert "optimize" in kinds and "optimize-failed" not in kinds
    offer = next(r for r in recs if r["event"] == "offer")
    assert offer["accepted"] and offer["champion"] == "static:6"
    assert offer["sim_cost_usd"] < 0.95 * offer["champion_sim_cost_usd"] and offer["sim_slo"] >= offer["target"]
    promo = next(r for r in recs if r["event"] == "promotion")
    assert promo["champion"] == offer["challenger"] and promo["former"] == "static:6" and promo["breaches"] == 0
    shadows = [r for r in recs if r["event"] == "shadow"]
    assert len(shadows) >= 3 and all("replicas" in r and r["policy"] for r in shadows)
    # Before the promotion every decision is the champion's; after it, the challenger's, and it is applied.
    i = kinds.index("promotion")
    before = [r for r in recs[:i] if r["event"] == "decision" and "applied" in r]
    after = [r for r in recs[i:] if r["event"] == "decision" and "applied" in r]
    assert before and all(r["policy"] == "static:6" for r in before)
    assert after and all(r["policy"] != "static:6" for r in after)
    assert "autotune_promotions_total 1.0" in own and 'autotune_offers_total{accepted="true"} 1.0' in own
