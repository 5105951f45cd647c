"""Pure bookkeeping of the fraud agent: primary reasons, transitions, partition keys, checkpoint marks."""

from __future__ import annotations

from streams.fraud.suspicion import (
    PRIMARY_REASONS,
    changed,
    full_rescore_due,
    labelled,
    primary_reason,
    suspicion_entry,
    transition,
)
from streams.kafka.partitioner import partition_of, watermark_key


def test_primary_reason_follows_the_fixed_order():
    assert primary_reason(["uniform_item_choice", "pushes_target:i42", "too_average"]) == "pushes_target"
    assert primary_reason(["too_average", "unlike_all_neighbours"]) == "unlike_all_neighbours"
    assert primary_reason(["buys_target:7", "nukes_target:3"]) == "buys_target"
    assert primary_reason(["something_new"]) == "other" and primary_reason([]) == "other"
    assert primary_reason(["analyst_fraud"]) == "analyst_fraud"
    assert PRIMARY_REASONS[0] == "buys_target" and PRIMARY_REASONS[-1] == "other" and len(PRIMARY_REASONS) == 9


def test_transitions_flag_and_clear_once():
    assert transition(None, True) == "flag"
    assert transition(None, False) is None
    assert transition({"flagged": False}, True) == "flag"
    assert transition({"flagged": True}, True) is None
    assert transition({"flagged": True}, False) == "clear"


def test_suspicion_entry_is_plain_json():
    assert suspicion_entry(0.71234567, True, ("too_average",), "fraud-2", 12.5, trusted=False) == {
        "score": 0.712346,
        "flagged": True,
        "reasons": ["too_average"],
        "ts": 12.5,
        "version": "fraud-2",
        "trusted": False,
    }


def test_partition_of_is_kafkas_murmur2():
    # murmur2 values from Kafka's own UtilsTest ("21" -> -973932308, "foobar" -> -790332482), then & 0x7fffffff % n.
    assert partition_of(b"21", 1000) == (-973932308 & 0x7FFFFFFF) % 1000
    assert partition_of(b"foobar", 1000) == (-790332482 & 0x7FFFFFFF) % 1000
    for p in range(8):
        assert partition_of(watermark_key(p, 8), 8) == p
        assert watermark_key(p, 8).startswith(b"\x00watermark-")


def test_an_analysts_label_overrides_the_detector():
    assert labelled(False, ["too_average"], "fraud") == (True, ["analyst_fraud"])
    assert labelled(True, ["too_average"], "genuine") == (False, ["analyst_genuine"])
    assert labelled(True, ("too_average",), None) == (True, ["too_average"])


def test_an_entry_is_written_again_only_when_it_says_something_new():
    entry = suspicion_entry(0.60, True, ["too_average"], "fraud-2", 1.0)
    assert changed(None, entry)
    assert not changed(entry, suspicion_entry(0.62, True, ["too_average"], "fraud-2", 2.0))
    assert changed(entry, suspicion_entry(0.66, True, ["too_average"], "fraud-2", 2.0))
    assert changed(entry, suspicion_entry(0.60, True, ["pushes_target:i1"], "fraud-2", 2.0))
    assert changed(entry, suspicion_entry(0.60, False, ["too_average"], "fraud-2", 2.0))
    assert changed(entry, suspicion_entry(0.60, True, ["too_average"], "fraud-2", 2.0, trusted=True))


def test_the_full_rescore_takes_at_most_its_share_of_the_time():
    assert full_rescore_due(None, 0.0)  # never ran
    assert full_rescore_due(60.0, 0.5)  # a small population: every tick
    assert not full_rescore_due(60.0, 21.0)  # 21 s of 81: over a tenth, skipped
    assert full_rescore_due(189.0, 21.0)  # 21 s of 210: a tenth, due
    assert not full_rescore_due(188.0, 21.0)
    assert full_rescore_due(20.0, 10.0, max_share=0.5)
