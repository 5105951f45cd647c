"""Faust's recovery, as patched by `streams.kafka.faust_app`: input partitions are sought to their
committed offsets before they are resumed, so nothing is fetched from the position past the records
that the rebalance dropped."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from unittest.mock import AsyncMock, MagicMock

from faust.tables.recovery import Recovery
from faust.types import TP

import streams.kafka.faust_app  # noqa: F401 - installs the patches

EVENTS = TP("events", 0)


class PartitionModel:
    """One input partition: a fetcher that fetches from the current position as soon as the partition
    is resumed, and a seek (a broker round trip) that moves the position to the committed offset."""

    def __init__(self, position: int, committed: int, end: int) -> None:
        self.position, self.committed, self.end = position, committed, end
        self.paused = True
        self.fetched_from: list[int] = []

    def assignment(self) -> set:
        return {EVENTS}

    def resume_partitions(self, partitions: set) -> None:
        assert partitions == {EVENTS}
        self.paused = False
        self._fetch()

    async def perform_seek(self) -> None:
        await asyncio.sleep(0)  # the committed offsets come from the broker
        self.position = self.committed
        self._fetch()

    def _fetch(self) -> None:
        if not self.paused and self.position < self.end:
            self.fetched_from.append(self.position)
            self.position = self.end

    def resume_flow(self) -> None:
        pass


def _recovery(consumer: PartitionModel) -> SimpleNamespace:
    """The attributes of a Faust `Recovery` that `_resume_streams` uses."""
    app = SimpleNamespace(
        consumer=consumer,
        consumer_generation_id=7,
        conf=SimpleNamespace(broker_request_timeout=5.0),
        on_rebalance_complete=SimpleNamespace(send=AsyncMock()),
        flow_control=MagicMock(),
        _fetcher=SimpleNamespace(maybe_start=AsyncMock()),
        on_rebalance_end=MagicMock(),
    )

    async def wait(coro, timeout=None):
        return await coro

    return SimpleNamespace(
        app=app,
        log=MagicMock(),
        _wait=wait,
        _is_changelog_tp=lambda tp: False,
        completed=MagicMock(),
        tables=MagicMock(),
    )


def test_the_first_fetch_after_recovery_starts_at_the_committed_offset():
    # The rebalance dropped records 0..1722 from the queues: the position stands at 1723, nothing committed.
    partition = PartitionModel(position=1723, committed=0, end=1804)
    asyncio.run(Recovery._resume_streams(_recovery(partition), 7))
    assert partition.fetched_from[0] == 0, partition.fetched_from


def test_recovery_that_a_new_rebalance_overtook_seeks_nothing():
    partition = PartitionModel(position=1723, committed=0, end=1804)
    asyncio.run(Recovery._resume_streams(_recovery(partition), 6))  # an older generation
    assert partition.fetched_from == [] and partition.paused
