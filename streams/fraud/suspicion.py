"""Pure bookkeeping of the stream's fraud agent: suspicion entries, flag/clear transitions, checkpoint marks.

The agent (`streams/worker/fraud_agent.py`) keeps its Faust tables and Kafka sends; everything it decides
lives here as plain functions and one small class, tested with literal inputs. It must never
import faust, kafka or prometheus_client, nor read the clock (callers pass `now`).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PRIMARY_REASONS", "primary_reason", "suspicion_entry", "transition", "Checkpoint"]

# Fixed order of docs/metrics.md: group evidence (targets) first, then profile evidence.
PRIMARY_REASONS = (
    "buys_target",
    "pushes_target",
    "nukes_target",
    "uniform_item_choice",
    "unlike_all_neighbours",
    "too_average",
    "ignores_consensus",
    "other",
)


def primary_reason(reasons: Iterable[str]) -> str:
    """The first of `reasons` (without an ":item" suffix) in the fixed metrics order, `other` if none is known."""
    given = {r.split(":", 1)[0] for r in reasons}
    return next((r for r in PRIMARY_REASONS[:-1] if r in given), "other")


def suspicion_entry(score: float, flagged: bool, reasons: Iterable[str], version: str, now: float) -> dict:
    """The value stored in the suspicion table for one user."""
    return {
        "score": round(float(score), 6),
        "flagged": bool(flagged),
        "reasons": list(reasons),
        "ts": now,
        "version": version,
    }


def transition(previous: dict | None, flagged: bool) -> str | None:
    """`flag` when a user crosses the threshold from below, `clear` when it falls back, else None."""
    was = bool(previous and previous.get("flagged"))
    if flagged and not was:
        return "flag"
    if was and not flagged:
        return "clear"
    return None


class Checkpoint:
    """Which events the detector has folded in: per-user last offset, per-partition watermark, dirty users.

    A user's events all sit on one partition (producers key by user id), so "offset ≤ the user's mark"
    means the detector has that event already; this is what keeps replays from counting twice.
    """

    def __init__(self, marks: dict[str, int] | None = None, watermarks: dict[int, int] | None = None):
        self.marks: dict[str, int] = dict(marks or {})
        self.watermarks: dict[int, int] = dict(watermarks or {})
        self.dirty: dict[str, int] = {}  # user -> partition, folded since the last checkpoint

    def folded(self, user: str, offset: int) -> bool:
        """True if the user's event at `offset` is in the detector already."""
        return offset <= self.marks.get(user, -1)

    def observe(self, user: str, partition: int, offset: int) -> None:
        """Record that the detector now holds the user's events up to `offset` of `partition`."""
        if offset > self.marks.get(user, -1):
            self.marks[user] = offset
        self.dirty[user] = partition
        self.advance(partition, offset)

    def advance(self, partition: int, offset: int) -> None:
        """Record that every event of `partition` up to `offset` has been seen (folded or not needed)."""
        if offset > self.watermarks.get(partition, -1):
            self.watermarks[partition] = offset

    def take_dirty(self) -> dict[int, list[str]]:
        """The users to write at this checkpoint, by partition; resets the dirty set."""
        out: dict[int, list[str]] = {}
        for user, partition in self.dirty.items():
            out.setdefault(partition, []).append(user)
        self.dirty = {}
        return out
