"""`advrec produce` never counts a message as sent when Kafka did not take it."""

from __future__ import annotations

import pytest
from kafka.future import Future

from streams.kafka.producer import _CheckedProducer


class StandInKafkaProducer:
    """kafka-python's producer as far as sending goes: each send's future settles when the test says."""

    def __init__(self) -> None:
        self.sent: list[Future] = []

    def send(self, topic, **kwargs) -> Future:
        self.sent.append(Future())
        return self.sent[-1]

    def flush(self) -> None:  # like kafka-python's: waits, never raises
        return None


def test_flush_raises_when_a_send_failed_and_passes_when_all_arrived():
    kafka = StandInKafkaProducer()
    producer = _CheckedProducer(kafka)
    for i in range(3):
        producer.send("events", key=b"u", value=str(i).encode())
    kafka.sent[0].success("metadata")
    kafka.sent[1].failure(TimeoutError("delivery timed out"))
    kafka.sent[2].success("metadata")
    with pytest.raises(RuntimeError, match="1 messages not delivered.*delivery timed out"):
        producer.flush()
    producer.send("events", key=b"u", value=b"3")
    kafka.sent[3].success("metadata")
    producer.flush()  # a failure is reported once
