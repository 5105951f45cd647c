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


def test_gate_reads_the_detector():
    det = FraudDetector()
    for k in range(25):
        det.update("u", f"i{k}", "click", 100.0 + k, None)
    assert gate(TrustPolicy(), det, "u") == (True, "trusted")
    assert gate(TrustPolicy(min_age_s=3600), det, "u") == (False, "young_account")
    assert gate(TrustPolicy(min_age_s=3600), det, "u", now_ts=100.0 + 3600) == (True, "trusted")
    assert gate(TrustPolicy(), det, "nobody") == (False, "new_account")


def test_gate_shares_counts_events_at_their_batch_close():
    n = 4
    rep = Replay(
        users=np.array(["a", "a", "g", "g"], dtype=object),
        ts=np.arange(n, dtype=float),
        batch=np.zeros(n, int),
        flagged_at_close=np.array([0, 1, 0, 0], bool),
        score_at_close=np.zeros(n),
        events_at_close=np.array([1, 2, 1, 5]),
        age_at_close=np.zeros(n),
        lenient_at_close=np.zeros(n, bool),
        close_ts=np.array([3.0]),
        final_flagged=set(),
        final_scores={},
        update_s=0.0,
        flush_s=0.0,
        final_s=0.0,
    )
    out = gate_shares(TrustPolicy(min_events=2), rep, {"a"}, final_trusted={"g": True})
    # a: 1 event (new) and flagged -> both held; g: 1 event (new, delayed), then 5 (trusted)
    assert out == {"attacker_events_held": 1.0, "genuine_events_delayed": 0.5, "genuine_events_never_released": 0.0}
    assert gate_shares(TrustPolicy(min_events=2), rep, {"a"}, {"g": False})["genuine_events_never_released"] == 0.5


def test_the_policy_of_the_settings():
    from streams.contract.settings import Settings

    settings = Settings(trust_min_events=7, trust_min_age_s=60.0, trust_max_score=0.5, trust_hold_lenient=False)
    assert TrustPolicy.from_settings(settings) == TrustPolicy(7, 60.0, 0.5, False)
