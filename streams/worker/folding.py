"""Which events the one fraud detector has folded in: per user, the last source offset per partition.

The detector reads validated events from `fraud.events`; after a restart or a rebalance it is
rebuilt from its last checkpoint and the envelopes after it are read again, and an envelope may
also arrive twice (ingest sends again what a crash may have lost). `FoldMarks.fresh` says whether
an event is new to the detector and records it; the marks of the users changed since the last
checkpoint are written beside their detector state, so the two always agree. Pure: no I/O, no clock.
"""

from __future__ import annotations

__all__ = ["FoldMarks"]


class FoldMarks:
    """Per user: {"topic/partition": last offset folded}; and the users changed since the last checkpoint."""

    def __init__(self, marks: dict[str, dict[str, int]] | None = None) -> None:
        self.marks: dict[str, dict[str, int]] = {user: dict(m) for user, m in (marks or {}).items()}
        self.dirty: set[str] = set()
        self._this_envelope: set[tuple[str, str, int]] = set()

    def begin(self) -> None:
        """A new `ValidBatch` envelope starts: events at an offset folded before it are old again."""
        self._this_envelope.clear()

    def fresh(self, user: str, source: str, offset: int) -> bool:
        """True (and recorded) if the user's event at `offset` of `source` is new to the detector.

        Several events of one envelope (a JSON array sent as one record) share its offset: the
        later ones are fresh too, within the same `ValidBatch`.
        """
        mine = self.marks.get(user)
        if mine is None:
            mine = self.marks[user] = {}
        key = (user, source, offset)
        if offset <= mine.get(source, -1) and key not in self._this_envelope:
            return False
        mine[source] = offset
        self._this_envelope.add(key)
        self.dirty.add(user)
        return True

    def of(self, user: str) -> dict[str, int]:
        """The user's marks (to store beside the user's detector state)."""
        return dict(self.marks.get(user, {}))

    def take_dirty(self) -> list[str]:
        """The users to write at this checkpoint, sorted; resets the dirty set."""
        users, self.dirty = sorted(self.dirty), set()
        return users
