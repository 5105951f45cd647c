"""Faust's consumer, as patched by `streams.kafka.faust_app`: its drain loop waits at most
`RECORDS_WAIT_S` for new records, not the 1 s it asks for, so partitions resumed meanwhile (a
stream buffer with room again) are fetched from without a second's stall."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.transport.consumer import Consumer
from faust.types import TP

from streams.kafka.faust_app import RECORDS_WAIT_S

EVENTS = TP("events", 0)


class Fetching:
    """What `Consumer._wait_next_records` reads of the consumer; records the fetch's timeout."""

    def __init__(self) -> None:
        self.flow_active = True
        self.not_waiting_next_records = asyncio.Event()
        self.app = SimpleNamespace(client_only=False)
        self.timeouts: list[float] = []

    def _get_active_partitions(self) -> set:
        return {EVENTS}

    async def _getmany(self, active_partitions, timeout: float):
        self.timeouts.append(timeout)
        return {}


def test_the_drain_waits_briefly_for_records():
    async def main():
        consumer = Fetching()
        records, active = await Consumer._wait_next_records(consumer, 1.0)  # what `_drain_messages` asks for
        return consumer.timeouts, records, active

    timeouts, records, active = asyncio.run(main())
    assert timeouts == [RECORDS_WAIT_S] and RECORDS_WAIT_S < 1.0
    assert (records, active) == ({}, {EVENTS})
