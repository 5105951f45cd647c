"""Test doubles of the stream trainer's ports, shipped with the package (like bytewax's TestingSource).

`MemorySource` is a `BatchSource` over lists, `RecordingMetrics` a `TrainerMetrics` that keeps what
it was told, `RecordingRounds` an `on_round` handler that keeps every call; with them a test runs
source → trainer → handler in process and checks literal lists. Production code must never import
this module.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from training.stream.catalog import CatalogUpdate
from training.stream.trainer import Batch, RoundResult, TrainerMetrics

__all__ = ["MemorySource", "RecordingMetrics", "RecordingRounds", "window_batch"]


def window_batch(uri: str, rows: pd.DataFrame, position: int, path: str | None = None) -> Batch:
    """The `batches` announcement of an in-memory window file (`rows` of WINDOW_SCHEMA, one
    partition of `events`), at `position` in its source; `path` defaults to the uri."""
    first, last = int(rows["offset"].iloc[0]), int(rows["offset"].iloc[-1])
    announcement = {
        "uri": uri,
        "path": uri if path is None else path,
        "rows": len(rows),
        "topic": "events",
        "partition": 0,
        "first_offset": first,
        "last_offset": last,
        "min_kafka_ts": float(rows["kafka_ts"].min()),
        "max_kafka_ts": float(rows["kafka_ts"].max()),
        "suspect_rows": int(rows["suspect"].sum()),
    }
    return Batch(announcement, "batches", 0, position)


class MemorySource:
    """A BatchSource over lists, for tests: hands out `per_poll` batches (and every flag) a poll, records commits."""

    def __init__(
        self,
        batches: Iterable[Batch] = (),
        flags: Iterable[tuple[str | None, dict | None]] = (),
        per_poll: int | None = None,
        catalog: Iterable[CatalogUpdate] = (),
    ) -> None:
        self.batches, self.flags, self.per_poll = list(batches), list(flags), per_poll
        self.catalog = list(catalog)
        self.committed: list[Batch] = []

    def poll(self, timeout_s: float) -> tuple[list[Batch], list[tuple[str | None, dict | None]]]:
        """The next batches and every flag not handed out yet."""
        n = len(self.batches) if self.per_poll is None else self.per_poll
        batches, self.batches = self.batches[:n], self.batches[n:]
        flags, self.flags = self.flags, []
        return batches, flags

    def commit(self, batches: list[Batch]) -> None:
        """Remember what was committed."""
        self.committed.extend(batches)

    def backlog(self) -> int:
        """Batches not polled yet."""
        return len(self.batches)

    def catalog_updates(self) -> list[CatalogUpdate]:
        """Every catalog update not handed out yet."""
        updates, self.catalog = self.catalog, []
        return updates


class RecordingMetrics(TrainerMetrics):
    """TrainerMetrics that keeps every finished round, the batches consumed and the last pending count."""

    def __init__(self) -> None:
        self.rounds: list[RoundResult] = []
        self.consumed = 0
        self.pending_batches = 0

    def round_done(self, result: RoundResult) -> None:
        """Keep the round's result."""
        self.rounds.append(result)

    def batches_consumed(self, n: int) -> None:
        """Add to the consumed count."""
        self.consumed += n

    def pending(self, n: int) -> None:
        """Keep the pending count."""
        self.pending_batches = n


class RecordingRounds:
    """An `on_round` handler that keeps every (model, report, lineage) it is called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, dict, dict]] = []

    def __call__(self, model: object, report: dict, lineage: dict) -> None:
        """Keep the call."""
        self.calls.append((model, report, lineage))
