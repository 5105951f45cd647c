"""A busy agent's input is fetched again within advrec's fetch wait (`CONSUMER_FETCH_MAX_WAIT_MS`),
not Faust's 1.5 s.

aiokafka keeps one fetch in flight per broker and leaves out of it the partitions whose fetched
records the app has not taken yet. While an agent works through a batch, Faust's consumer thread
fetches on: its next fetch asks only for the quiet partitions, and the broker holds that fetch for
the consumer's max wait while new records of the busy partition wait behind it. Here the worker's
own consumer (as its Faust app creates it) reads a topic fed at a steady rate beside a quiet one,
and stops taking records for 0.3 s of every 0.5 s, as an agent does over a batch. Measured here:
the p99 lag from produced to taken was 1.6-1.8 s with Faust's 1,500 ms and 0.32-0.33 s with
100 ms (benchmarks/fetch_wait.py).
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

from aiokafka import TopicPartition

from streams.contract.settings import Settings
from streams.kafka.producer import produce_events
from streams.kafka.topics import ensure_topics
from streams.worker.app import create_app

RATE, SECONDS, WORK_S, EVERY_S = 4_000, 3.0, 0.3, 0.5


async def _lags(app, bootstrap: str, busy: str, quiet: str, n: int) -> list[float]:
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(busy, 0), TopicPartition(quiet, 0)])
        await consumer.seek_to_end()
        # each record stamped by the producer when sent
        events = ({"user_id": f"u{i % 100}", "item_id": "i1"} for i in range(n))
        feed = threading.Thread(target=produce_events, args=(bootstrap, busy, events), kwargs={"rate": RATE})
        feed.start()
        lags: list[float] = []
        started, next_batch = time.time(), EVERY_S
        while len(lags) < n:
            records = await consumer.getmany(timeout_ms=5_000, max_records=5_000)
            now = time.time()
            lags += [now - r.timestamp / 1000 for tp, rs in records.items() if tp.topic == busy for r in rs]
            if now - started > next_batch:  # the agent works through a batch: it takes nothing meanwhile
                next_batch += EVERY_S
                await asyncio.sleep(WORK_S)
        feed.join()
        return lags
    finally:
        await consumer.stop()


def test_a_busy_consumer_gets_new_records_within_the_fetch_wait(kafka_broker, tmp_path):
    name = f"fetch-wait-{time.time_ns()}"
    busy, quiet = f"{name}-busy", f"{name}-quiet"
    ensure_topics(kafka_broker, [busy, quiet], 1)
    app = create_app(Settings(app_id=name, data_dir=tmp_path), kafka_broker, False)
    n = int(RATE * SECONDS)

    lags = asyncio.run(_lags(app, kafka_broker, busy, quiet, n))

    assert len(lags) == n
    p90 = statistics.quantiles(lags, n=100)[89]
    # A record waits for the agent's work, the fetch wait and a round trip (p90 0.26-0.28 s, p99
    # 0.31 s here); with Faust's 1,500 ms it also waits out the quiet partitions' long poll, in
    # every cycle (p90 1.47-1.48 s, p99 1.60-1.61 s). The p90, not the p99: one stall of the
    # shared machine (once in eight CI runs: p99 1.16 s) holds up more than 1 % of a 3 s run's
    # records, not 10 %, and is not the long poll this test is about.
    assert p90 < WORK_S + 0.7, f"p90 lag {p90:.2f} s"
