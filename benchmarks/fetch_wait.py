"""A busy consumer's lag with advrec's fetch wait against Faust's 1.5 s, same broker, same run.

    .venv/bin/python benchmarks/fetch_wait.py [--rate 8000] [--seconds 5] [--work-s 0.3] [--every-s 0.5]

Records are produced to a topic at a steady rate while an aiokafka consumer (the fetch size every
advrec app uses) takes them beside a quiet topic, and stops taking for `--work-s` of every
`--every-s`, as an agent does while it works through a batch (Faust's consumer thread fetches on
meanwhile). Lag = taken - produced, per record; p50, p99, max. Once with Faust's hard-coded fetch
wait (1,500 ms, the baseline) and once with advrec's (`CONSUMER_FETCH_MAX_WAIT_MS`), alternating,
twice each, on one embedded broker. aiokafka keeps one fetch in flight per broker and leaves out
of it the partitions whose records are fetched and not yet taken, so with the long wait new
records of the busy topic wait out the quiet topic's long poll.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402

from streams.kafka.faust_app import CONSUMER_FETCH_MAX_WAIT_MS, CONSUMER_MAX_FETCH_BYTES  # noqa: E402
from streams.kafka.producer import produce_events  # noqa: E402
from streams.kafka.topics import ensure_topics  # noqa: E402
from streams.local.broker import EmbeddedBroker  # noqa: E402

FAUST_FETCH_MAX_WAIT_MS = 1_500  # faust/transport/drivers/aiokafka.py, hard-coded


async def lags(bootstrap: str, wait_ms: int, busy: str, quiet: str, args) -> list[float]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=wait_ms,
        max_partition_fetch_bytes=CONSUMER_MAX_FETCH_BYTES,
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(busy, 0), TopicPartition(quiet, 0)])
        await consumer.seek_to_end()
        n = int(args.rate * args.seconds)
        # each record stamped by the producer when sent
        events = ({"user_id": f"u{i % 100}", "item_id": "i1"} for i in range(n))
        producer = threading.Thread(target=produce_events, args=(bootstrap, busy, events), kwargs={"rate": args.rate})
        producer.start()
        out: list[float] = []
        started, next_work = time.time(), args.every_s
        while len(out) < n:
            records = await consumer.getmany(timeout_ms=5_000, max_records=5_000)
            now = time.time()
            out += [now - r.timestamp / 1000 for tp, rs in records.items() if tp.topic == busy for r in rs]
            if now - started > next_work:
                next_work += args.every_s
                await asyncio.sleep(args.work_s)
        producer.join()
        return out
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=8_000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--work-s", type=float, default=0.3)
    parser.add_argument("--every-s", type=float, default=0.5)
    args = parser.parse_args()
    p99s: dict[int, list[float]] = {FAUST_FETCH_MAX_WAIT_MS: [], CONSUMER_FETCH_MAX_WAIT_MS: []}
    print(f"{args.rate:.0f} records/s, {args.seconds:.0f} s; the consumer takes none {args.work_s}s of {args.every_s}s")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "kafka") as broker:
        for run, wait_ms in enumerate([FAUST_FETCH_MAX_WAIT_MS, CONSUMER_FETCH_MAX_WAIT_MS] * 2):
            busy, quiet = f"busy-{run}", f"quiet-{run}"
            ensure_topics(broker.bootstrap, [busy, quiet], 1)
            got = asyncio.run(lags(broker.bootstrap, wait_ms, busy, quiet, args))
            q = statistics.quantiles(got, n=100)
            p99s[wait_ms].append(q[98])
            label = "Faust's" if wait_ms == FAUST_FETCH_MAX_WAIT_MS else "advrec's"
            print(
                f"  fetch wait {wait_ms:5d} ms ({label:8s}): lag p50 {1e3 * q[49]:6.0f} ms  "
                f"p99 {1e3 * q[98]:6.0f} ms  max {1e3 * max(got):6.0f} ms"
            )
    ratio = statistics.median(p99s[FAUST_FETCH_MAX_WAIT_MS]) / statistics.median(p99s[CONSUMER_FETCH_MAX_WAIT_MS])
    print(f"ratio p99 lag, Faust's wait / advrec's: {ratio:.1f}")


if __name__ == "__main__":
    main()
