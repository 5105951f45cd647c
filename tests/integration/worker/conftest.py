"""Fixtures of the worker's integration tests."""

from __future__ import annotations

import pytest

from streams.local.broker import TansuBroker


@pytest.fixture(params=["kafka", "tansu"])
def kafka_or_tansu(request, kafka_broker):
    """(bootstrap, worker settings): the session's Apache Kafka, and a Tansu broker with its workarounds
    (the fallback without Java: its changelog writes must keep end offsets exact, `Changelogs`)."""
    if request.param == "kafka":
        yield kafka_broker, None
    else:
        with TansuBroker() as tansu:
            yield tansu.bootstrap, {"ADVREC_TANSU_WORKAROUNDS": "1"}
