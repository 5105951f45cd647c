"""Faust's end of recovery, as patched by `streams.kafka.faust_app`: no record reaches a stream
before its partition is sought to the committed offset, so none is cleared from the queues after
being marked read.

The model runs Faust's own `Recovery.on_recovery_completed` against one input partition, the real
flow-control queue (resuming the flow clears it, as in Faust) and a drain task that, like Faust's
`Consumer._drain_messages`, delivers the record at the fetch position whenever the flow runs and
the partition is not paused.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from unittest.mock import AsyncMock, MagicMock

from faust.tables.recovery import Recovery
from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

import streams.kafka.faust_app  # noqa: F401 - installs the patches

EVENTS = TP("events", 0)


class PartitionModel:
    """One input partition behind Faust's consumer: position, committed offset, read offset, flow."""

    def __init__(self, position: int, committed: int, end: int) -> None:
        self.position, self.committed, self.end = position, committed, end
        self.read_offset: int | None = None
        self.paused = True
        self.flow_active = True  # the changelog restore resumed it

    def assignment(self) -> set:
        return {EVENTS}

    def resume_partitions(self, partitions: set) -> None:
        assert partitions == {EVENTS}
        self.paused = False

    async def perform_seek(self) -> None:
        await asyncio.sleep(0)  # the committed offsets come from the broker
        self.position = self.committed
        self.read_offset = self.committed

    def stop_flow(self) -> None:
        self.flow_active = False

    def resume_flow(self) -> None:
        self.flow_active = True

    async def drain(self, queue: FlowControlQueue) -> None:
        """Faust's `_drain_messages`: deliver what the position holds, skip what was read."""
        while self.position < self.end:
            if self.flow_active and not self.paused:
                offset = self.position
                self.position += 1
                if self.read_offset is None or offset >= self.read_offset:
                    queue.put_nowait(offset)
                    self.read_offset = offset
            await asyncio.sleep(0)


def _recovery(consumer: PartitionModel, flow_control: FlowControlEvent) -> SimpleNamespace:
    """The attributes of a Faust `Recovery` that `on_recovery_completed` uses."""
    app = SimpleNamespace(
        consumer=consumer,
        consumer_generation_id=7,
        conf=SimpleNamespace(broker_request_timeout=5.0),
        on_rebalance_complete=SimpleNamespace(send=AsyncMock()),
        flow_control=flow_control,
        _fetcher=SimpleNamespace(maybe_start=AsyncMock()),
        on_rebalance_end=MagicMock(),
        assignor=SimpleNamespace(assigned_standbys=lambda: set()),
    )

    async def wait(coro, timeout=None):
        # as `Recovery._wait`: the awaited step runs as a task of its own, so other tasks (the
        # drain) may run between its end and the code after the wait
        await asyncio.wait([asyncio.ensure_future(coro)], timeout=timeout)

    return SimpleNamespace(
        app=app,
        log=MagicMock(),
        _wait=wait,
        _is_changelog_tp=lambda tp: False,
        _set_recovery_ended=MagicMock(),
        completed=MagicMock(),
        tables=SimpleNamespace(values=lambda: [], on_actives_ready=MagicMock(), on_standbys_ready=MagicMock()),
        actives_for_table={},
        standbys_for_table={},
    )


def _delivered_after_recovery(position: int, committed: int, end: int, generation: int = 7) -> list[int]:
    async def scenario() -> list[int]:
        flow_control = FlowControlEvent()
        queue: FlowControlQueue = FlowControlQueue(flow_control=flow_control, clear_on_resume=True)
        partition = PartitionModel(position, committed, end)
        drain = asyncio.ensure_future(partition.drain(queue))
        await asyncio.sleep(0)
        await Recovery.on_recovery_completed(_recovery(partition, flow_control), generation)
        for _ in range(4 * end):  # let the drain deliver the rest
            await asyncio.sleep(0)
        drain.cancel()
        delivered = []
        while not queue.empty():
            delivered.append(queue.get_nowait())
        return delivered

    return asyncio.run(scenario())


def test_the_record_at_the_committed_offset_is_delivered_first_after_a_restart():
    # A restarted detector: its position is the committed offset already (43, as measured).
    assert _delivered_after_recovery(position=43, committed=43, end=60) == list(range(43, 60))


def test_records_fetched_past_the_committed_offset_are_delivered_again_in_order():
    # A rebalance dropped records 0..1722 from the queues: the position stands at 1723, nothing committed.
    assert _delivered_after_recovery(position=1723, committed=0, end=1804) == list(range(0, 1804))


def test_recovery_that_a_new_rebalance_overtook_delivers_nothing():
    # An older generation: Faust returns before resuming anything; the next recovery resumes the flow.
    assert _delivered_after_recovery(position=43, committed=43, end=60, generation=6) == []
