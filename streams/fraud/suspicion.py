"""Pure bookkeeping of the stream's fraud agent: suspicion entries, flag/clear transitions, checkpoint marks.

The agent (`streams/worker/fraud_agent.py`) keeps its Faust tables and Kafka sends; everything it decides
lives here as plain functions and one small class, tested with literal inputs. It must never
import faust, kafka or prometheus_client, nor read the clock (callers pass `now`).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "PRIMARY_REASONS",
    "primary_reason",
    "suspicion_entry",
    "transition",
    "ANALYST_REASONS",
    "labelled",
    "changed",
    "FULL_RESCORE_MAX_SHARE",
    "full_rescore_due",
]

# Fixed order of docs/metrics.md: group evidence (targets) first, then profile evidence.
PRIMARY_REASONS = (
    "buys_target",
    "pushes_target",
    "nukes_target",
    "uniform_item_choice",
    "unlike_all_neighbours",
    "too_average",
    "ignores_consensus",
    "analyst_fraud",
    "other",
)
# An analyst's label overrides the detector: these are the reasons of verdicts that come from one.
ANALYST_REASONS = {"fraud": "analyst_fraud", "genuine": "analyst_genuine"}


def primary_reason(reasons: Iterable[str]) -> str:
    """The first of `reasons` (without an ":item" suffix) in the fixed metrics order, `other` if none is known."""
    given = {r.split(":", 1)[0] for r in reasons}
    return next((r for r in PRIMARY_REASONS[:-1] if r in given), "other")


def suspicion_entry(
    score: float, flagged: bool, reasons: Iterable[str], version: str, now: float, trusted: bool | None = None
) -> dict:
    """The value stored in the suspicion table for one user (`trusted`: the trust gate's verdict)."""
    return {
        "score": round(float(score), 6),
        "flagged": bool(flagged),
        "reasons": list(reasons),
        "ts": now,
        "version": version,
        "trusted": trusted,
    }


def transition(previous: dict | None, flagged: bool) -> str | None:
    """`flag` when a user crosses the threshold from below, `clear` when it falls back, else None."""
    was = bool(previous and previous.get("flagged"))
    if flagged and not was:
        return "flag"
    if was and not flagged:
        return "clear"
    return None


def labelled(flagged: bool, reasons: Iterable[str], label: str | None) -> tuple[bool, list[str]]:
    """The verdict in force: an analyst's label ("fraud" / "genuine") overrides the detector's."""
    if label in ANALYST_REASONS:
        return label == "fraud", [ANALYST_REASONS[label]]
    return flagged, list(reasons)


def changed(previous: dict | None, entry: dict, min_score_move: float = 0.05) -> bool:
    """Whether `entry` says something `previous` did not: another flag, other reasons, or a score move."""
    if previous is None:
        return True
    return (
        previous.get("flagged") != entry["flagged"]
        or previous.get("trusted") != entry["trusted"]
        or previous.get("reasons") != entry["reasons"]
        or abs(float(previous.get("score", 0.0)) - entry["score"]) >= min_score_move
    )


# The full rescore holds the detector's loop for O(scored users × profile × raters) (21 s of CPU
# at 42,000 scored users: docs/detection.md, "Known gaps"); it may take at most this share of the
# time, so its period stretches to 1 / share times its own cost when that is longer.
FULL_RESCORE_MAX_SHARE = 0.1


def full_rescore_due(since_last_s: float | None, last_cost_s: float, max_share: float = FULL_RESCORE_MAX_SHARE) -> bool:
    """Whether the timer's full rescore runs now: `since_last_s` since the last one ended (None:
    never ran), which took `last_cost_s`; it is skipped while it would exceed `max_share` of the time."""
    return since_last_s is None or last_cost_s <= max_share * (since_last_s + last_cost_s)
