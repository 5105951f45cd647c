"""Fold marks: each (user, source, offset) folded once; dirty users per checkpoint."""

from __future__ import annotations

from streams.worker.folding import FoldMarks


def test_an_event_is_fresh_once_and_older_offsets_are_not():
    marks = FoldMarks()
    assert marks.fresh("u1", "events/0", 5)
    marks.begin()
    assert not marks.fresh("u1", "events/0", 5) and not marks.fresh("u1", "events/0", 3)
    assert marks.fresh("u1", "events/1", 3)  # another partition has its own mark
    assert marks.of("u1") == {"events/0": 5, "events/1": 3}


def test_dirty_users_are_taken_once_per_checkpoint():
    marks = FoldMarks()
    marks.fresh("b", "events/0", 1)
    marks.fresh("a", "events/0", 2)
    marks.begin()
    marks.fresh("a", "events/0", 1)  # not fresh: does not re-dirty anything new
    assert marks.take_dirty() == ["a", "b"] and marks.take_dirty() == []


def test_restored_marks_skip_what_the_checkpoint_holds():
    restored = FoldMarks({"u1": {"events/0": 10}})
    assert not restored.fresh("u1", "events/0", 10) and restored.fresh("u1", "events/0", 11)
    assert restored.take_dirty() == ["u1"]


def test_events_of_one_envelope_share_its_offset_and_are_all_fresh_once():
    marks = FoldMarks()
    marks.begin()
    assert marks.fresh("u1", "events/0", 7) and marks.fresh("u1", "events/0", 7)  # two events of one envelope
    marks.begin()  # the same envelope delivered again
    assert not marks.fresh("u1", "events/0", 7) and not marks.fresh("u1", "events/0", 7)
    assert marks.fresh("u1", "events/0", 8)
