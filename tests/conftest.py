"""Shared fixtures: a real embedded broker (Apache Kafka 4.x, KRaft, single node) for the whole session."""

from __future__ import annotations

import pytest

from streams.local.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """Apache Kafka on free loopback ports (Tansu only where no Java runs); yields its bootstrap address."""
    root = tmp_path_factory.mktemp("broker")
    with EmbeddedBroker(root / "kafka", log_path=root / "broker.log") as broker:
        yield broker.bootstrap
