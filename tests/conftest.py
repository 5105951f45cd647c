"""Shared fixtures: a real embedded Kafka-protocol broker (Tansu) for the whole session."""
from __future__ import annotations

import pytest

from streams.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """A Tansu broker on a free loopback port; yields its bootstrap address."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as broker:
        yield broker.bootstrap
