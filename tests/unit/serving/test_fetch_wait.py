"""The scorer's fetch of requests: answered at once by default, gathered for `scorer_fetch_wait_ms` when set."""

from __future__ import annotations

import asyncio

import pytest

from streams.contract.settings import Settings
from streams.serving.app import FETCH_GATHER_BYTES, FETCH_MAX_WAIT_MS, create_scorer_app
from streams.serving.core import ScorerCore


def _fetch_of(tmp_path, wait_ms: int) -> tuple[int, int]:
    """(fetch max wait ms, fetch min bytes) of the aiokafka consumer the scorer's Faust app creates."""

    async def build() -> tuple[int, int]:
        settings = Settings(data_dir=tmp_path, scorer_fetch_wait_ms=wait_ms)
        app = create_scorer_app(settings, "127.0.0.1:9", False, ScorerCore(10), None)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms, consumer._fetch_min_bytes
        finally:
            await consumer.stop()  # never started: only releases what it created

    return asyncio.run(build())


def test_by_default_the_broker_answers_a_fetch_as_soon_as_one_request_is_there(tmp_path):
    assert _fetch_of(tmp_path, 0) == (FETCH_MAX_WAIT_MS, 1)


def test_a_fetch_wait_lets_the_broker_gather_requests_for_that_long(tmp_path):
    assert _fetch_of(tmp_path, 5) == (5, FETCH_GATHER_BYTES)


def test_a_negative_fetch_wait_is_refused():
    with pytest.raises(ValueError, match="scorer_fetch_wait_ms"):
        Settings(scorer_fetch_wait_ms=-1)
