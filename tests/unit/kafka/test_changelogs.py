"""`Changelogs`: a batch is acknowledged only once every table write made before it is on the broker."""

from __future__ import annotations

import asyncio

import pytest

from streams.kafka.faust_app import Changelogs, release


class StandInTable:
    """What `Changelogs` uses of a Faust table: `send_changelog`, which returns the record's future."""

    def __init__(self) -> None:
        self.sent: list[asyncio.Future] = []

    def send_changelog(self, partition, key, value) -> asyncio.Future:
        self.sent.append(asyncio.get_running_loop().create_future())
        return self.sent[-1]


class StandInEvent:
    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> None:
        self.acked = True


def test_release_waits_for_every_changelog_record_written_before_it():
    async def scenario():
        profiles, items = StandInTable(), StandInTable()
        changelogs = Changelogs([profiles, items])
        profiles.send_changelog(0, b"u1", b"{}")  # as Table.on_key_set calls it
        items.send_changelog(1, b"i1", b"{}")
        events = [StandInEvent(), StandInEvent()]
        releasing = asyncio.ensure_future(release(events, changelogs))
        await asyncio.sleep(0.01)
        assert not any(e.acked for e in events)  # nothing delivered yet
        profiles.sent[0].set_result("metadata")
        await asyncio.sleep(0.01)
        assert not any(e.acked for e in events)  # the item record is still on its way
        items.sent[0].set_result("metadata")
        await releasing
        assert all(e.acked for e in events) and not changelogs.undelivered

    asyncio.run(scenario())


def test_a_failed_delivery_leaves_the_batch_unacknowledged():
    async def scenario():
        table = StandInTable()
        changelogs = Changelogs([table])
        table.send_changelog(0, b"u1", b"{}")
        table.sent[0].set_exception(ConnectionError("broker gone"))
        event = StandInEvent()
        with pytest.raises(ConnectionError):
            await release([event], changelogs)
        assert not event.acked  # read again after the restart

    asyncio.run(scenario())
