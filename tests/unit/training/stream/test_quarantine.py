"""Quarantine: flags set and clear users; tombstones clear; the detector version is kept."""

from __future__ import annotations

from training.stream.quarantine import Quarantine


def test_quarantine_follows_flags_and_clears():
    q = Quarantine()
    q.update(
        {"user_id": "u1", "score": 0.9, "reasons": ["burst"], "ts": 1.0, "detector_version": "d1", "flagged": True}
    )
    q.update({"user_id": "u2", "flagged": True, "detector_version": "d2"})
    q.update({"user_id": "u1", "flagged": False})  # cleared
    q.update(None, key="u2")  # tombstone clears too
    q.update({"user_id": "u3", "flagged": True})
    assert q.flagged == {"u3"} and q.detector_version == "d2"


def test_trust_follows_the_latest_record_and_a_flag_revokes_it():
    q = Quarantine()
    q.update({"user_id": "a", "flagged": False, "trusted": True})
    q.update({"user_id": "b", "flagged": False, "trusted": True})
    q.update({"user_id": "c", "flagged": False, "trusted": True})
    q.update({"user_id": "b", "flagged": True, "trusted": False})  # flagged later
    q.update({"user_id": "c", "flagged": False, "trusted": False})  # suspicious again
    q.update({"user_id": "a", "flagged": False})  # an older worker's record says nothing of trust
    assert q.trusted == {"a"} and q.flagged == {"b"}
    q.update(None, key="a")  # a tombstone forgets the user
    assert q.trusted == set()
