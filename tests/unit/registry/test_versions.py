"""Version tags: formatting and parsing with literal inputs, lineage tags, and the version list."""

from __future__ import annotations

import json

import pytest

from registry.promotion import Decision
from registry.testing import MemoryStore
from registry.versions import (
    decision_tags,
    lineage_tags,
    list_versions,
    manual_promotion_tags,
    round_tags,
    tag_float,
    tag_number,
    version_row,
    write_lineage,
)


@pytest.mark.parametrize(
    "value, text",
    [
        (0.5, "0.5"),
        (0.123456789, "0.123457"),
        (50, "50"),
        (1234567.0, "1.23457e+06"),
        (None, "nan"),
        (float("nan"), "nan"),
    ],
)
def test_numbers_are_tagged_with_six_significant_digits(value, text):
    assert tag_number(value) == text


def test_tags_read_back_as_numbers_or_none():
    tags = {"hr_at_10": "0.5", "ndcg_at_10": "nan", "kind": "bpr"}
    assert tag_float(tags, "hr_at_10") == 0.5
    assert tag_float(tags, "ndcg_at_10") is None  # NaN reads as missing
    assert tag_float(tags, "kind") is None and tag_float(tags, "absent") is None


def test_a_round_is_tagged_with_format_kind_run_and_the_gate_numbers():
    numbers = {"hr@10": 0.5, "ndcg@10": 0.3, "fgsm_ndcg_drop": 0.1, "poisoning_lift": float("nan"), "eval_users": 50.0}
    assert round_tags("bpr", "advrec.mf/2", "run-1", numbers) == {
        "advrec_format": "advrec.mf/2",
        "kind": "bpr",
        "run_id": "run-1",
        "hr_at_10": "0.5",
        "ndcg_at_10": "0.3",
        "fgsm_ndcg_drop": "0.1",
        "poisoning_lift": "nan",
        "eval_users": "50",
    }


def test_decision_tags_record_action_reasons_time_and_numbers():
    decision = Decision("reject", ("below_floor: a", "fgsm_drop: b"), {"challenger_hr@10": 0.04})
    assert decision_tags(decision, 1700000000.12345) == {
        "decision": "reject",
        "decision_reasons": "below_floor: a | fgsm_drop: b",
        "decided_at": "1700000000.123",
        "gate.challenger_hr_at_10": "0.04",
    }
    faced = decision_tags(Decision("promote", ("x",), {"champion_ndcg@10": 0.3}), 1.0, champion=4)
    assert faced["gate.champion_version"] == "4" and faced["gate.champion_ndcg_at_10"] == "0.3"
    assert manual_promotion_tags(5.0) == {
        "decision": "promote",
        "decision_reasons": "manual promotion",
        "decided_at": "5.000",
    }


def test_lineage_is_tagged_as_json_and_long_values_by_their_size():
    files = [f"w-{i:05d}.parquet" for i in range(400)]  # far over the tag limit as JSON
    tags = lineage_tags({"kafka_offsets": {"events": {"0": [0, 99]}}, "detector_version": "robust-z/1", "files": files})
    assert tags["lineage.kafka_offsets"] == '{"events": {"0": [0, 99]}}'
    assert tags["lineage.detector_version"] == '"robust-z/1"'
    assert json.loads(tags["lineage.files"]) == {"truncated": True, "items": 400, "see": "artifact lineage.json"}


def test_a_version_row_of_advrec_models():
    tags = {"decision": "promote", "kind": "bpr", "hr_at_10": "0.5", "ndcg_at_10": "0.3", "fgsm_ndcg_drop": "0.1"}
    assert version_row("3", tags, ["champion", "challenger"], 1_700_000_000_500) == {
        "version": 3,
        "aliases": ["challenger", "champion"],
        "decision": "promote",
        "kind": "bpr",
        "hr@10": 0.5,
        "ndcg@10": 0.3,
        "fgsm_drop": 0.1,
        "poisoning_lift": None,
        "exposure_max_jump": None,
        "reasons": "",
        "created": 1_700_000_000.5,
    }
    assert version_row(1, {}, [], None)["created"] is None


def test_versions_are_listed_newest_first_with_their_aliases_and_lineage_written():
    store = MemoryStore()
    for _ in range(3):
        store.register("models:/m")
    store.set_alias("champion", 2)
    store.set_version_tags(2, {"decision": "promote", "hr_at_10": "0.4"})
    write_lineage(store, 3, {"round": 7})
    rows = list_versions(store)
    assert [(r["version"], r["aliases"], r["decision"], r["hr@10"]) for r in rows] == [
        (3, [], "", None),
        (2, ["champion"], "promote", 0.4),
        (1, [], "", None),
    ]
    assert store.version_tags(3) == {"lineage.round": "7"}
    assert list_versions(MemoryStore()) == []
