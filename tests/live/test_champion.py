"""Champion and challenger (``autotune.live.champion``): the three gates, without a cluster."""

from __future__ import annotations

from autotune.core import LIVE_GUARDS, Guards, LoopState
from autotune.core.types import Observation, PoolObs
from autotune.live.champion import ChallengeConfig, ChampionChallenger, Offer, attainment, wins
from autotune.registry import make_policy
from autotune.scenario import load_scenario

SC = load_scenario("live-demo")
CFG = ChallengeConfig(every_s=60.0, shadow_s=30.0, margin=0.05, watch_s=30.0, tolerance=0.005)


def _obs(t: float, running: int = 2, slo: float = 1.0, rate: float = 6.0) -> Observation:
    pools = (PoolObs("l4", running=running, starting=0, pending=0, draining=0, batch_size=4, ongoing_requests=1.0),)
    return Observation(time_s=t, window_s=5.0, arrivals=int(rate * 5), completed=int(rate * 5), dropped=0,
                       p50_ms=100.0, p95_ms=200.0, p99_ms=300.0, slo_attainment=slo, queued_requests=0, pools=pools)


def _offer(policy: str, cost: float = 1.0, slo: float = 0.99, champion_cost: float = 2.0,
           champion_slo: float = 0.99) -> Offer:
    return Offer(policy, cost, slo, champion_cost, champion_slo, 0.95, "report.md")


def _cc(champion: str = "static:2") -> ChampionChallenger:
    return ChampionChallenger(CFG, make_policy(champion, SC), champion, lambda spec: make_policy(spec, SC),
                              target=0.95)


def _run(cc: ChampionChallenger, t0: float, t1: float, slo: float = 1.0) -> list[dict]:
    guards = Guards(tuple(SC.pools), LIVE_GUARDS)
    state = LoopState(cc.champion.initial_state())
    out = []
    for t in range(int(t0), int(t1), 5):
        recs, switch = cc.observe(_obs(float(t), slo=slo), state, guards, float(t))
        out += recs
        if switch is not None:
            state = switch[1]
            assert switch[0] is cc.champion
    return out


def test_an_offer_must_keep_the_target_and_save_the_margin() -> None:
    assert wins(_offer("hpa"), "static:2", 0.05)[0]
    assert not wins(_offer("static:2"), "static:2", 0.05)[0]  # the running policy itself
    assert "under the 95.0% target" in wins(_offer("hpa", slo=0.9), "static:2", 0.05)[1]
    assert "margin" in wins(_offer("hpa", cost=1.95), "static:2", 0.05)[1]
    assert "champion's" in wins(Offer("hpa", 1.0, 0.92, 2.0, 0.94, 0.90, ""), "static:2", 0.05)[1]
    # A champion that misses the target is beaten by any challenger that keeps it, whatever it costs.
    assert wins(_offer("hpa", cost=3.0, champion_slo=0.90), "static:2", 0.05)[0]


def test_a_challenger_that_behaves_is_promoted_after_its_shadow_and_a_regression_rolls_it_back() -> None:
    cc = _cc()
    rec = cc.propose(_offer("static:3"), 0.0)
    assert rec["accepted"] and rec["event"] == "offer"
    shadow = _run(cc, 5, 35)
    assert [r["event"] for r in shadow].count("shadow") == 6 and shadow[-1]["event"] == "promotion"
    assert cc.champion.name == "static:3" and cc.promotions == 1
    assert shadow[-1]["breaches"] == 0 and shadow[-1]["sim_cost_usd"] == 1.0 and shadow[-1]["former"] == "static:2"
    assert cc.propose(_offer("hpa"), 36.0)["why"] == "the last promotion is still being watched"
    watched = _run(cc, 35, 70, slo=0.80)  # the SLO falls after the promotion
    assert watched[-1]["event"] == "rollback" and cc.champion.name == "static:2" and cc.rollbacks == 1
    assert watched[-1]["slo_after"] < watched[-1]["slo_before"]


def test_a_kept_promotion_stays() -> None:
    cc = _cc()
    cc.propose(_offer("static:3"), 0.0)
    _run(cc, 5, 35)
    assert _run(cc, 35, 70)[-1]["event"] == "kept" and cc.champion.name == "static:3"


def test_a_challenger_the_guards_would_clip_is_rejected_and_never_acts() -> None:
    cc = _cc()
    assert cc.propose(_offer("static:40"), 0.0)["accepted"]  # live-demo's pool holds 1..8
    recs = _run(cc, 5, 35)
    assert recs[0]["would_breach"] and recs[-1]["event"] == "rejected"
    assert "would have clipped" in recs[-1]["why"] and cc.champion.name == "static:2" and cc.promotions == 0


def test_an_offer_compared_with_a_former_champion_is_stale() -> None:
    rec = _cc().propose(Offer("hpa", 1.0, 0.99, 2.0, 0.99, 0.95, "", against="static:4"), 0.0)
    assert not rec["accepted"] and rec["why"] == "compared with static:4, which no longer runs"


def test_an_unbuildable_challenger_is_rejected_at_once() -> None:
    rec = _cc().propose(_offer("no-such-policy"), 0.0)
    assert not rec["accepted"] and "cannot build no-such-policy" in rec["why"]


def test_attainment_weighs_windows_by_requests() -> None:
    assert attainment([(1.0, 100, 1.0), (2.0, 300, 0.5)], 0.0, 2.0) == 0.625
    assert attainment([(1.0, 100, 1.0)], 1.0, 2.0) is None
