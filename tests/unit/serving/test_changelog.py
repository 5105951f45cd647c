"""The scorer's changelog view: the popularity fallback ranks items by trusted users, as fraud.flags says,
and by every account until someone is trusted; never by events."""

from __future__ import annotations

import json

from streams.serving.changelog import ChangelogView


def _view() -> ChangelogView:
    return ChangelogView("unused:9092", "profiles", "flags")


def _put(view: ChangelogView, topic: str, key: str, value: dict | None) -> None:
    view.apply(topic, key.encode(), None if value is None else json.dumps(value).encode())


def _flag(view: ChangelogView, user: str, **fields) -> None:
    record = {"user_id": user, "score": 0.0, "reasons": [], "ts": 0.0, "detector_version": "t"}
    _put(view, "flags", user, {**record, **fields})


def _ranked(view: ChangelogView) -> dict[str, float]:
    ranking = view.popularity()
    return dict(zip(ranking.ranked.tolist(), ranking.counts.tolist()))


def test_every_account_counts_once_until_someone_is_trusted_then_trusted_accounts_do():
    view = _view()
    _put(view, "profiles", "bot", {"items": ["target"]})  # however many events it sent: one account
    _put(view, "profiles", "u1", {"items": ["a", "b"]})
    _put(view, "profiles", "u2", {"items": ["a"]})
    assert _ranked(view) == {"a": 2.0, "target": 1.0, "b": 1.0}  # the stream's first events: no verdicts yet
    _put(view, "profiles", "u2", {"items": ["c"]})  # a profile's items move: its counts move with them
    assert _ranked(view) == {"target": 1.0, "a": 1.0, "b": 1.0, "c": 1.0}
    _flag(view, "u1", flagged=False, trusted=True)
    _flag(view, "bot", flagged=True, trusted=False)
    # shares of the one trusted account (1.0 each), capped by the shares of all three (1/3 each)
    assert _ranked(view) == {"a": 1 / 3, "b": 1 / 3}
    assert view.popularity() is None  # unchanged since: no new ranking to hand over
    _put(view, "profiles", "bot", None)  # a deleted profile leaves every account's counts too
    assert view.users["target"] == 0


def test_an_item_ranks_high_only_if_trusted_accounts_and_every_account_both_hold_it():
    view = _view()
    for k in range(6):  # genuine users, most too new to be trusted; all of them hold "a"
        _put(view, "profiles", f"g{k}", {"items": ["a", "b"] if k < 2 else ["a"]})
    for k in range(3):  # a farm the detector missed: trusted, all on its target
        _put(view, "profiles", f"f{k}", {"items": ["target"]})
    for user in ("g0", "g1", "f0", "f1", "f2"):
        _flag(view, user, flagged=False, trusted=True)
    # among the trusted the target leads (3 of 5 against 2 of 5); among all 9 accounts it holds 3
    # and "a" 6: "a" first, the target capped at 3/9
    ranked = _ranked(view)
    assert list(ranked) == ["a", "target", "b"]
    assert ranked == {"a": 2 / 5, "target": 3 / 9, "b": 2 / 9}
    for user in ("f0", "f1", "f2"):  # flagged at last: the target has no trusted account left
        _flag(view, user, flagged=True)
    assert _ranked(view) == {"a": 6 / 9, "b": 2 / 9}  # the trusted shares (1.0) capped by every account's


def test_without_verdicts_every_account_ranks_for_good():
    view = ChangelogView("unused:9092", "profiles")  # no detector: fraud.flags is not read
    _put(view, "profiles", "u1", {"items": ["a", "b"]})
    _put(view, "profiles", "u2", {"items": ["b"]})
    view.apply("flags", b"u1", b'{"user_id": "u1", "flagged": true}')  # a topic it does not read: ignored
    assert _ranked(view) == {"b": 2.0, "a": 1.0}


def test_trust_follows_profiles_flags_older_records_and_tombstones():
    view = _view()
    _flag(view, "u1", flagged=False, trusted=True)  # the verdict may come before the profile
    _put(view, "profiles", "u1", {"items": ["a", "b"]})
    _put(view, "profiles", "u2", {"items": ["a"]})
    _flag(view, "u2", flagged=False, trusted=True)
    assert view.trusted_users == {"a": 2, "b": 1}
    _put(view, "profiles", "u1", {"items": ["a", "c"]})  # a trusted profile changes: counts move with it
    assert +view.trusted_users == {"a": 2, "c": 1}
    _flag(view, "u2", flagged=False)  # an older worker's record (no `trusted`): trust as it was
    assert view.trusted == {"u1", "u2"}
    _flag(view, "u2", flagged=True)  # flagged: out, whatever it said before
    assert +view.trusted_users == {"a": 1, "c": 1}
    _put(view, "flags", "u1", None)  # a tombstone clears trust
    _put(view, "profiles", "u2", None)
    assert view.trusted == set() and view.trusted_users["a"] == 0
