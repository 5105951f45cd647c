"""`Changelogs`: a batch is acknowledged only once every table write made before it is on the broker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from streams.kafka import faust_app
from streams.kafka.faust_app import Changelogs, release
from streams.kafka.partitioner import partition_of


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


@pytest.mark.parametrize("settled_s", [0.0, 0.01], ids=["failed-just-before", "failed-long-before"])
def test_a_failed_delivery_leaves_the_batch_unacknowledged(settled_s):
    async def scenario():
        table = StandInTable()
        changelogs = Changelogs([table])
        table.send_changelog(0, b"u1", b"{}")
        table.sent[0].set_exception(ConnectionError("broker gone"))
        if settled_s:
            await asyncio.sleep(settled_s)  # the failure is settled long before the batch is released
        event = StandInEvent()
        with pytest.raises(ConnectionError):
            await release([event], changelogs)
        assert not event.acked  # read again after the restart

    asyncio.run(scenario())


class StandInBatch:
    def __init__(self, capacity: int) -> None:
        self.records: list[tuple[bytes, bytes]] = []
        self.capacity, self.closed = capacity, False

    def append(self, *, key, value, timestamp):
        if self.closed or len(self.records) == self.capacity:
            self.closed = True  # as aiokafka's BatchBuilder: full means closed
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True


class StandInProducer:
    """aiokafka's producer as bulk writes use it; each sent batch is acknowledged when the test says."""

    def __init__(self, partitions: int, capacity: int = 2) -> None:
        self.partitions, self.capacity = partitions, capacity
        self.sent: list[tuple[int, StandInBatch, asyncio.Future]] = []

    def _ensure_producer(self):
        return self

    async def partitions_for(self, topic):
        return set(range(self.partitions))

    def create_batch(self) -> StandInBatch:
        return StandInBatch(self.capacity)

    async def send_batch(self, batch, topic, *, partition):
        self.sent.append((partition, batch, asyncio.get_running_loop().create_future()))
        return self.sent[-1][2]


class StandInRawTable(StandInTable):
    key_serializer = value_serializer = "raw"
    name = "profiles"

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[bytes, bytes] = {}
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: "app-profiles-changelog")


class FullSizeBatch(StandInBatch):  # aiokafka's BatchBuilder(bytes, compression, is_transactional=)
    def __init__(self, batch_bytes, compression, *, is_transactional):
        super().__init__(capacity=3)


async def _acknowledge_all(producer: StandInProducer, changelogs: Changelogs) -> None:
    for _ in range(20):
        await asyncio.sleep(0)
        for _, _, acknowledged in producer.sent:
            if not acknowledged.done():
                acknowledged.set_result(None)
    await changelogs.delivered()


def test_bulk_write_updates_the_store_at_once_and_sends_each_key_to_its_partition():
    async def scenario():
        producer, table = StandInProducer(partitions=4), StandInRawTable()
        app = SimpleNamespace(producer=producer)
        changelogs = Changelogs([table])
        rows = {f"user-{i}".encode(): f"profile-{i}".encode() for i in range(20)}
        await changelogs.write(app, table, rows)
        assert table.data == rows and not table.sent  # in the store; no per-row Faust send
        for _ in range(10):
            await asyncio.sleep(0)
        sent = [(p, key, value) for p, batch, _ in producer.sent for key, value in batch.records]
        assert sorted(sent) == sorted((partition_of(k, 4), k, v) for k, v in rows.items())
        assert all(batch.closed for _, batch, _ in producer.sent)  # complete batches do not linger
        assert changelogs.undelivered
        for _, _, acknowledged in producer.sent:
            acknowledged.set_result(None)
        await changelogs.delivered()
        assert not changelogs.undelivered

    asyncio.run(scenario())


def test_a_keys_later_value_never_reaches_its_partition_before_the_earlier_one():
    async def scenario():
        producer, table = StandInProducer(partitions=1, capacity=1), StandInRawTable()
        app = SimpleNamespace(producer=producer)
        changelogs = Changelogs([table])
        await changelogs.write(app, table, {b"u1": b"old", b"u2": b"x"})  # two batches: one record each
        await changelogs.write(app, table, {b"u1": b"new"})
        for _ in range(10):
            await asyncio.sleep(0)
        first_write = [[(b"u1", b"old")], [(b"u2", b"x")]]  # aiokafka keeps one write's batches in order
        assert [batch.records for _, batch, _ in producer.sent] == first_write
        producer.sent[0][2].set_result(None)
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(producer.sent) == 2  # the second write waits for all of the first
        producer.sent[1][2].set_result(None)
        for _ in range(10):
            await asyncio.sleep(0)
        assert producer.sent[-1][1].records == [(b"u1", b"new")]
        producer.sent[-1][2].set_result(None)
        await changelogs.delivered()
        assert table.data[b"u1"] == b"new"

    asyncio.run(scenario())


def test_on_tansu_each_partition_of_a_write_ends_with_a_batch_of_its_last_record_alone(monkeypatch):
    """Tansu counts a partition's end offset from its last batch: that batch must hold one record."""

    monkeypatch.setattr(faust_app, "BatchBuilder", FullSizeBatch)

    async def scenario():
        producer, table = StandInProducer(partitions=2, capacity=1), StandInRawTable()  # capped at one record
        changelogs = Changelogs([table], single_record_tail=True)
        rows = {f"user-{i}".encode(): f"profile-{i}".encode() for i in range(10)}
        await changelogs.write(SimpleNamespace(producer=producer), table, rows)
        await _acknowledge_all(producer, changelogs)
        for partition in (0, 1):
            sent = [batch.records for p, batch, _ in producer.sent if p == partition]
            expected = [(k, v) for k, v in rows.items() if partition_of(k, 2) == partition]
            assert [r for records in sent[:-1] for r in records] == expected  # full batches, in order
            assert max(len(records) for records in sent[:-1]) > 1  # not one record per batch
            assert sent[-1] == [expected[-1]]  # then the partition's last row again, alone

    asyncio.run(scenario())


def test_records_of_another_topic_are_sent_in_bulk_and_followed_until_delivered():
    async def scenario():
        producer = StandInProducer(partitions=4, capacity=100)
        app, changelogs = SimpleNamespace(producer=producer), Changelogs([])
        flags = [(f"user-{i}".encode(), f"flag-{i}".encode()) for i in range(12)]
        await changelogs.send_records(app, "fraud.flags", flags)
        for _ in range(10):
            await asyncio.sleep(0)
        sent = [(p, key, value) for p, batch, _ in producer.sent for key, value in batch.records]
        assert sorted(sent) == sorted((partition_of(k, 4), k, v) for k, v in flags)  # where Faust's send puts them
        assert len(producer.sent) == len({partition_of(k, 4) for k, _ in flags})  # one batch per partition
        event = StandInEvent()
        releasing = asyncio.ensure_future(release([event], changelogs))
        await asyncio.sleep(0.01)
        assert not event.acked  # the batch that made them waits for them
        await _acknowledge_all(producer, changelogs)
        await releasing
        assert event.acked

    asyncio.run(scenario())


def test_unkeyed_records_of_one_call_go_together_and_the_next_call_to_the_next_partition():
    async def scenario():
        producer = StandInProducer(partitions=3, capacity=100)
        app, changelogs = SimpleNamespace(producer=producer), Changelogs([])
        for call in range(3):
            await changelogs.send_records(
                app, "events.deadletter", [(None, f"letter-{call}-{i}".encode()) for i in range(5)]
            )
        await _acknowledge_all(producer, changelogs)
        assert [(p, len(batch.records)) for p, batch, _ in producer.sent] == [(0, 5), (1, 5), (2, 5)]

    asyncio.run(scenario())


def test_on_tansu_records_of_another_topic_go_one_per_batch_and_none_twice(monkeypatch):
    """A dead letter written twice would count its input twice: no repeated last record there."""

    monkeypatch.setattr(faust_app, "BatchBuilder", FullSizeBatch)

    async def scenario():
        producer = StandInProducer(partitions=2, capacity=1)
        app, changelogs = SimpleNamespace(producer=producer), Changelogs([], single_record_tail=True)
        letters = [(None, f"letter-{i}".encode()) for i in range(4)]
        await changelogs.send_records(app, "events.deadletter", letters)
        await _acknowledge_all(producer, changelogs)
        assert [batch.records for _, batch, _ in producer.sent] == [[letter] for letter in letters]

    asyncio.run(scenario())
