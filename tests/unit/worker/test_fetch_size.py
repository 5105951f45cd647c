"""The consumers of the worker and of the detector process fetch `CONSUMER_MAX_FETCH_BYTES` of a
partition per round, not Faust's 1 MB: the one partition of `fraud.events` carries every valid
event, and at 1 MB a round the detector fell behind ingest (docs/broker.md, eleventh session).
The broker holds their fetches at most `CONSUMER_FETCH_MAX_WAIT_MS`, not Faust's 1.5 s: a busy
agent's new records waited out a long poll of its quiet partitions (twelfth session;
tests/integration/worker/test_fetch_wait.py measures it)."""

from __future__ import annotations

import asyncio

import pytest

from streams.contract.settings import Settings
from streams.kafka.faust_app import CONSUMER_FETCH_MAX_WAIT_MS, CONSUMER_MAX_FETCH_BYTES
from streams.worker.app import create_app, create_detector_app


@pytest.mark.parametrize("create", [create_app, create_detector_app])
def test_a_consumer_fetches_up_to_the_bounds(create, tmp_path):
    async def fetch_bounds() -> tuple[int, int, int]:
        app = create(Settings(app_id="fetch", data_dir=tmp_path), "127.0.0.1:9", False)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._max_partition_fetch_bytes, consumer._fetch_max_wait_ms, consumer._fetch_min_bytes
        finally:
            await consumer.stop()  # never started: only releases what it created

    assert CONSUMER_MAX_FETCH_BYTES > 1024**2
    assert CONSUMER_FETCH_MAX_WAIT_MS < 1_500
    assert asyncio.run(fetch_bounds()) == (CONSUMER_MAX_FETCH_BYTES, CONSUMER_FETCH_MAX_WAIT_MS, 1)
