"""The steps of a round after registration, in memory: tag the challenger, run the gate, tag the decision."""

from __future__ import annotations

from registry.aliases import CHALLENGER, CHAMPION
from registry.promotion import GateConfig, gate_numbers
from registry.rounds import decide_round, tag_challenger
from registry.testing import MemoryStore

GATE = GateConfig(min_hr_at_10=0.05, min_ndcg_at_10=0.02, min_eval_users=10)
CALM = {"k": 10, "users": 100, "items": []}


def _report(hr: float, ndcg: float, drop: float = 0.1) -> dict:
    return {
        "hr@10": hr,
        "ndcg@10": ndcg,
        "eval_users": 50,
        "fgsm": {"0.25": {"ndcg@10": ndcg * (1 - drop)}},
        "poisoning": {"lift": 0.01},
        "exposure": CALM,
    }


def _registered(store: MemoryStore, report: dict) -> int:
    version = store.register("models:/m")
    tag_challenger(store, version, "bpr", f"run-{version}", gate_numbers(report), {"batch_files": ["w-1"]})
    return version


def test_a_new_version_is_tagged_and_becomes_challenger():
    store = MemoryStore()
    version = _registered(store, _report(0.5, 0.3))
    tags = store.version_tags(version)
    assert store.alias_version(CHALLENGER) == version and store.alias_version(CHAMPION) is None
    assert (tags["advrec_format"], tags["kind"], tags["run_id"]) == ("advrec.mf/1", "bpr", "run-1")
    assert (tags["hr_at_10"], tags["ndcg_at_10"], tags["fgsm_ndcg_drop"]) == ("0.5", "0.3", "0.1")
    assert tags["lineage.batch_files"] == '["w-1"]'


def test_the_first_version_is_judged_without_a_champion():
    store = MemoryStore()
    version = _registered(store, _report(0.5, 0.3))
    decision = decide_round(store, version, _report(0.5, 0.3), GATE, now=lambda: 10.0)
    assert decision.action == "promote" and decision.reasons[0].startswith("first_champion")
    tags = store.version_tags(version)
    assert (tags["decision"], tags["decided_at"], tags["gate.challenger_hr_at_10"]) == ("promote", "10.000", "0.5")
    assert "gate.champion_hr_at_10" not in tags and "gate.champion_version" not in tags


def test_the_champion_is_compared_only_on_the_challengers_set_never_by_its_stale_tags():
    store = MemoryStore()
    champion = _registered(store, _report(0.5, 0.3))
    store.set_alias(CHAMPION, champion)
    worse = _registered(store, _report(0.4, 0.2))
    # Without the champion's numbers on this round's set: hold, whatever its tags say.
    decision = decide_round(store, worse, _report(0.4, 0.2), GATE, now=lambda: 11.0)
    assert decision.action == "hold" and decision.reasons[0].startswith("missing_champion_numbers")
    same_set = {**_report(0.4, 0.2), "champion": {**_report(0.39, 0.2), "version": champion}}
    assert decide_round(store, worse, same_set, GATE, now=lambda: 12.0).action == "promote"
    tags = store.version_tags(worse)
    assert (tags["gate.champion_hr_at_10"], tags["gate.champion_version"]) == ("0.39", str(champion))
    better_champion = {**_report(0.4, 0.2), "champion": {**_report(0.5, 0.3), "version": champion}}
    assert decide_round(store, worse, better_champion, GATE, now=lambda: 13.0).action == "reject"
    # Measured against another version than the champion now (a rollback during the round): hold.
    store.set_alias(CHAMPION, worse)
    assert decide_round(store, worse, same_set, GATE, now=lambda: 14.0).action == "hold"
