"""`current`: events fetched before a rebalance are left out of an agent's batch and never acknowledged."""

from __future__ import annotations

from types import SimpleNamespace

from faust.types.tuples import ConsumerMessage

from streams.kafka.faust_app import current


class StandInConsumer:
    """What `ConsumerMessage.ack` calls when a message's last reference goes: the offsets it would commit."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: ConsumerMessage) -> bool:
        self.acked.append(message.offset)
        return True


def _app(generation: int, rebalancing: bool = False):
    return SimpleNamespace(
        consumer_generation_id=generation, flow_control=SimpleNamespace(is_active=lambda: not rebalancing)
    )


def _events(generations: list[int]) -> list:
    messages = [
        ConsumerMessage("t", 0, offset, 0.0, 0, None, None, b"{}", None, generation_id=g)
        for offset, g in enumerate(generations)
    ]
    for message in messages:
        message.incref()  # as Faust's conductor does for the one stream that reads it
    return [SimpleNamespace(message=m) for m in messages]


def _take_events_acks(events: list, consumer: StandInConsumer) -> None:
    """What Faust's `take_events` does with its buffer once the agent's body returns."""
    for event in events:
        event.message.ack(consumer)


def test_only_the_present_generations_events_are_processed_and_acknowledged():
    events = _events([3, 4, 3, 4])
    fresh = current(_app(generation=4), events)
    assert [e.message.offset for e in fresh] == [1, 3]
    consumer = StandInConsumer()
    _take_events_acks(events, consumer)
    # the stale ones stay unacknowledged: their partition's new owner reads them again from the
    # committed offset, which must not move past them
    assert consumer.acked == [1, 3]


def test_while_a_rebalance_is_under_way_nothing_is_processed():
    events = _events([4, 4])
    assert current(_app(generation=4, rebalancing=True), events) == []
    consumer = StandInConsumer()
    _take_events_acks(events, consumer)
    assert consumer.acked == []


def test_a_batch_of_the_present_generation_is_returned_whole():
    events = _events([5, 5, 5])
    assert current(_app(generation=5), events) == events
