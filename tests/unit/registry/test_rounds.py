"""A round's gate and the tags its version is created with, in memory."""

from __future__ import annotations

from registry.aliases import CHAMPION
from registry.promotion import GateConfig, gate_numbers
from registry.rounds import decide_round
from registry.testing import MemoryStore
from registry.versions import new_version_tags

GATE = GateConfig(min_hr_at_10=0.05, min_ndcg_at_10=0.02, min_eval_users=10)
CALM = {"k": 10, "users": 100, "items": []}


def _report(hr: float, ndcg: float, drop: float = 0.1) -> dict:
    return {
        "hr@10": hr,
        "ndcg@10": ndcg,
        "eval_users": 50,
        "fgsm": {"0.25": {"ndcg@10": ndcg * (1 - drop)}},
        "poisoning": {"lift": 0.01},
        "popularity": {"hr@10": hr / 2, "ndcg@10": ndcg / 2},
        "exposure": CALM,
    }


def _registered(store: MemoryStore, report: dict) -> int:
    """A round registered as the facade does it: gate first, then the version with every tag."""
    decision, champion = decide_round(store, report, GATE)
    tags = new_version_tags(
        "bpr", "advrec.mf/2", "run-x", gate_numbers(report), {"batch_files": ["w-1"]}, decision, 10.0, champion
    )
    return store.register("models:/m", tags)


def test_a_version_is_created_with_its_numbers_lineage_and_decision():
    store = MemoryStore()
    version = _registered(store, _report(0.5, 0.3))
    tags = store.version_tags(version)
    assert (tags["advrec_format"], tags["kind"], tags["run_id"]) == ("advrec.mf/2", "bpr", "run-x")
    assert (tags["hr_at_10"], tags["ndcg_at_10"], tags["fgsm_ndcg_drop"]) == ("0.5", "0.3", "0.1")
    assert tags["lineage.batch_files"] == '["w-1"]'
    assert (tags["decision"], tags["decided_at"], tags["gate.challenger_hr_at_10"]) == ("promote", "10.000", "0.5")
    assert store.alias_map == {}  # the gate moves no alias; the facade does, after registration


def test_the_first_version_is_judged_without_a_champion():
    decision, champion = decide_round(MemoryStore(), _report(0.5, 0.3), GATE)
    assert champion is None
    assert decision.action == "promote" and decision.reasons[0].startswith("first_champion")
    tags = new_version_tags("bpr", "advrec.mf/2", "run-1", {}, {}, decision, 10.0, champion)
    assert "gate.champion_hr_at_10" not in tags and "gate.champion_version" not in tags


def test_the_champion_is_compared_only_on_the_challengers_set_never_by_its_stale_tags():
    store = MemoryStore()
    champion = _registered(store, _report(0.5, 0.3))
    store.set_alias(CHAMPION, champion)
    # Without the champion's numbers on this round's set: hold, whatever its tags say.
    decision, faced = decide_round(store, _report(0.4, 0.2), GATE)
    assert decision.action == "hold" and decision.reasons[0].startswith("missing_champion_numbers")
    assert faced == champion
    same_set = {**_report(0.4, 0.2), "champion": {**_report(0.39, 0.2), "version": champion}}
    decision, faced = decide_round(store, same_set, GATE)
    assert decision.action == "promote"
    tags = new_version_tags("bpr", "advrec.mf/2", "run-2", {}, {}, decision, 12.0, faced)
    assert (tags["gate.champion_hr_at_10"], tags["gate.champion_version"]) == ("0.39", str(champion))
    better_champion = {**_report(0.4, 0.2), "champion": {**_report(0.5, 0.3), "version": champion}}
    assert decide_round(store, better_champion, GATE)[0].action == "reject"
    # Measured against another version than the champion now (a rollback during the round): hold.
    store.set_alias(CHAMPION, _registered(store, _report(0.4, 0.2)))
    assert decide_round(store, same_set, GATE)[0].action == "hold"
