"""The trust gate: its rules, the gate read from a detector, and the held / delayed shares of a replay."""

from __future__ import annotations

import numpy as np

from streams.fraud import FraudDetector
from streams.fraud.evaluation import Replay
from streams.fraud.trust import TrustPolicy, gate, gate_shares, may_train


def test_trust_gate_rules():
    p = TrustPolicy(min_events=20, min_age_s=3600, max_score=0.25)
    assert may_train(p, 50, 7200, 0.1, False) == (True, "trusted")
    assert may_train(p, 5, 7200, 0.1, False) == (False, "new_account")
    assert may_train(p, 50, 60, 0.1, False) == (False, "young_account")
    assert may_train(p, 50, 7200, 0.3, False) == (False, "suspicious")
    assert may_train(p, 50, 7200, 0.1, False, lenient=True) == (False, "suspicious")
    assert may_train(TrustPolicy(hold_lenient=False), 50, 7200, 0.1, False, lenient=True) == (True, "trusted")
    assert may_train(p, 50, 7200, 0.9, True) == (False, "flagged")
    assert may_train(p, 30, 7200, 0.1, False, swarm=True) == (False, "swarm")
    assert may_train(p, 40, 7200, 0.1, False, swarm=True) == (True, "trusted")  # a marked account earns it later
    assert may_train(TrustPolicy(hold_swarms=False), 30, 7200, 0.1, False, swarm=True) == (True, "trusted")


def test_gate_reads_the_detector():
    det = FraudDetector()
    for k in range(25):
        det.update("u", f"i{k}", "click", 100.0 + k, None)
    assert gate(TrustPolicy(), det, "u") == (True, "trusted")
    assert gate(TrustPolicy(min_age_s=3600), det, "u") == (False, "young_account")
    assert gate(TrustPolicy(min_age_s=3600), det, "u", now_ts=100.0 + 3600) == (True, "trusted")
    assert gate(TrustPolicy(), det, "nobody") == (False, "new_account")
    # the stream's agent passes the flag as labels decide it, in place of the detector's own
    assert gate(TrustPolicy(), det, "u", flagged=True) == (False, "flagged")


def test_gate_holds_an_account_marked_in_a_swarm():
    det = FraudDetector()
    for k in range(25):
        det.update("u", f"i{k}", "click", 100.0 + k, None)
    state = {**det.user_state("u"), "swarm": "i3"}
    marked = FraudDetector.from_users({"u": state})
    assert marked.swarm_of("u") == "i3" and det.swarm_of("u") is None
    assert gate(TrustPolicy(), marked, "u") == (False, "swarm")
    assert gate(TrustPolicy(hold_swarms=False), marked, "u") == (True, "trusted")


def _replay(users, batch, flagged, events, lenient=None, swarm=None) -> Replay:
    n = len(users)
    return Replay(
        users=np.array(users, dtype=object),
        ts=np.arange(n, dtype=float),
        batch=np.array(batch, int),
        flagged_at_close=np.array(flagged, bool),
        score_at_close=np.zeros(n),
        events_at_close=np.array(events),
        age_at_close=np.zeros(n),
        lenient_at_close=np.zeros(n, bool) if lenient is None else np.array(lenient, bool),
        close_ts=np.arange(max(batch) + 1, dtype=float),
        final_flagged=set(),
        final_scores={},
        update_s=0.0,
        flush_s=0.0,
        final_s=0.0,
        swarm_at_close=None if swarm is None else np.array(swarm, bool),
    )


def test_gate_shares_count_an_event_released_later_as_trained():
    # a (attacker): new in batch 0, trusted in batch 1 (its batch-0 event is released), flagged in batch 2.
    # b (attacker): new, then flagged: its waiting event is dropped. g: new, then never trusted.
    rep = _replay(
        users=["a", "b", "g", "a", "b", "a"],
        batch=[0, 0, 0, 1, 1, 2],
        flagged=[0, 0, 0, 0, 1, 1],
        events=[1, 1, 1, 2, 2, 3],
    )
    out = gate_shares(TrustPolicy(min_events=2), rep, {"a", "b"})
    assert out["attacker_events_held_at_close"] == 0.8  # all but a's second
    assert out["attacker_events_kept_out"] == 0.6  # a's first two trained (one released), b's both dropped
    assert out["genuine_events_delayed"] == 1.0 and out["genuine_events_never_trained"] == 1.0
    # at the end g is trusted: its waiting event is released then
    assert gate_shares(TrustPolicy(min_events=2), rep, {"a", "b"}, {"g": True})["genuine_events_never_trained"] == 0.0


def test_gate_shares_hold_a_lenient_suspicious_account():
    rep = _replay(users=["a", "a"], batch=[0, 1], flagged=[0, 0], events=[30, 31], lenient=[1, 1])
    assert gate_shares(TrustPolicy(), rep, {"a"})["attacker_events_kept_out"] == 1.0
    assert gate_shares(TrustPolicy(hold_lenient=False), rep, {"a"})["attacker_events_kept_out"] == 0.0


def test_gate_shares_hold_an_account_marked_in_a_swarm():
    rep = _replay(users=["a", "a", "g"], batch=[0, 1, 1], flagged=[0, 0, 0], events=[30, 31, 30], swarm=[1, 1, 0])
    assert gate_shares(TrustPolicy(), rep, {"a"})["attacker_events_kept_out"] == 1.0
    assert gate_shares(TrustPolicy(), rep, {"a"})["genuine_events_never_trained"] == 0.0
    assert gate_shares(TrustPolicy(hold_swarms=False), rep, {"a"})["attacker_events_kept_out"] == 0.0


def test_the_policy_of_the_settings():
    from streams.contract.settings import Settings

    settings = Settings(
        trust_min_events=7,
        trust_min_age_s=60.0,
        trust_max_score=0.5,
        trust_hold_lenient=False,
        trust_hold_swarms=False,
        trust_swarm_min_events=9,
    )
    assert TrustPolicy.from_settings(settings) == TrustPolicy(7, 60.0, 0.5, False, False, 9)
