"""Which source offsets the trainer has trained on, per "topic/partition", as merged closed intervals.

The trainer's idempotence rests on it: a redelivered or rewritten window is skipped (or trimmed)
by its offsets. Plain data: it must never read a clock, a file or a broker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["OffsetRanges"]


class OffsetRanges:
    """Source offsets already trained on, per "topic/partition", as merged closed intervals."""

    def __init__(self, ranges: Mapping[str, Iterable[Iterable[int]]] | None = None) -> None:
        self._ranges: dict[str, list[list[int]]] = {}
        for key, spans in (ranges or {}).items():
            for first, last in spans:
                self.add(key, first, last)

    def add(self, key: str, first: int, last: int) -> None:
        """Mark [first, last] as trained."""
        spans = sorted(self._ranges.get(key, []) + [[int(first), int(last)]])
        merged: list[list[int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self._ranges[key] = merged

    def covers(self, key: str, first: int, last: int) -> bool:
        """Whether every offset of [first, last] is trained."""
        return any(lo <= first and last <= hi for lo, hi in self._ranges.get(key, []))

    def contains(self, key: str, offsets: np.ndarray) -> np.ndarray:
        """Boolean mask: is each offset trained."""
        offsets = np.asarray(offsets, dtype=np.int64)
        mask = np.zeros(len(offsets), bool)
        for lo, hi in self._ranges.get(key, []):
            mask |= (offsets >= lo) & (offsets <= hi)
        return mask

    def to_dict(self) -> dict[str, list[list[int]]]:
        """Plain data to persist."""
        return {k: [list(s) for s in v] for k, v in self._ranges.items()}
