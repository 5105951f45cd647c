"""10,000+ generated inputs through a real worker: every input accounted for, the worker stays up, nothing lost.

The inputs mix good events with everything a hostile or broken producer sends: malformed JSON,
null values (tombstones), 400-digit numbers, NaN/Infinity, 5,000-deep nesting, megabyte strings,
binary, wrong types, odd unicode, and events sent twice. Afterwards: inputs = processed +
dead-lettered + duplicates; each hostile input is dead-lettered once; every good event is in its
user's profile and in exactly one announced window file.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from kafka import KafkaConsumer

from streams.contract.windows import read_window
from streams.kafka.producer import send_raw
from streams.local.processes import metric_total, scrape_metrics
from tests.integration.conftest import wait_for
from tests.integration.worker.test_worker import _profile, _worker

pytestmark = pytest.mark.integration

TOPIC = "fuzz-events"
TS = 1_700_000_000.0


def _good(rng: random.Random, n: int) -> dict:
    kind = rng.choice(["click", "purchase", "rating"])
    value = round(rng.uniform(0.5, 5.0) * 2) / 2 if kind == "rating" else (rng.choice([None, 9.99]))
    user = rng.choice(["u1", "Zoë", "用户7", "u\u200b2", "🙂", "u-" + "x" * 100]) + str(rng.randrange(40))
    return {
        "event_id": f"g{n}",
        "user_id": user,
        "item_id": f"i{rng.randrange(300)}",
        "type": kind,
        "ts": TS + n,
        "value": value,
        "session_id": rng.choice([None, "s1"]),
    }


def _hostile(rng: random.Random, n: int) -> bytes | None:
    base = {"event_id": f"h{n}", "user_id": "u-hostile", "item_id": "i1", "type": "click", "ts": TS}
    shapes = [
        lambda: b"{not json" + str(n).encode(),
        lambda: None,  # a tombstone
        lambda: json.dumps({**base, "value": int("9" * 400)}).encode(),
        lambda: json.dumps({**base, "ts": float("nan")}).encode(),
        lambda: json.dumps({**base, "value": float("inf")}).encode(),
        lambda: (json.dumps(base)[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}").encode(),
        lambda: json.dumps({**base, "item_id": "x" * 1_000_000}).encode(),  # a megabyte string
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64))),
        lambda: json.dumps({**base, "user_id": 7}).encode(),
        lambda: json.dumps({**base, "type": "like"}).encode(),
        lambda: json.dumps({**base, "ts": "yesterday"}).encode(),
        lambda: json.dumps([{**base, "type": "like"}]).encode(),  # an envelope holding one bad event
        lambda: json.dumps([]).encode(),  # an empty envelope
        lambda: b"[" * 5000 + b"]" * 5000,  # an envelope of nested arrays
        lambda: b"[" + json.dumps(base).encode(),  # a cut envelope
        lambda: json.dumps({**base, "user_id": None}).encode(),
        lambda: b'{"event_id": "h", "user_id": "\\ud800", "item_id": "i", "type": "click", "ts": 1}',
        lambda: json.dumps({**base, "value": -1, "type": "purchase"}).encode(),
    ]
    return rng.choice(shapes)()


def test_ten_thousand_generated_inputs_are_all_accounted_for(kafka_broker, tmp_path):
    rng = random.Random(20261130)
    records: list[tuple[bytes | None, bytes | None]] = []
    good: dict[str, dict] = {}
    hostile = 0
    for n in range(10_500):
        roll = rng.random()
        if roll < 0.62:
            event = _good(rng, n)
            good[event["event_id"]] = event
            records.append((event["user_id"].encode(), json.dumps(event).encode()))
        elif roll < 0.70 and good:  # the same event sent again by its producer
            event = good[rng.choice(list(good))]
            records.append((event["user_id"].encode(), json.dumps(event).encode()))
        else:
            hostile += 1
            records.append((b"u-hostile", _hostile(rng, n)))
    duplicates = len(records) - len(good) - hostile
    assert len(records) >= 10_000 and hostile > 3_000 and duplicates > 500

    worker, base = _worker(
        tmp_path,
        kafka_broker,
        "fuzz",
        TOPIC,
        extra={
            "ADVREC_BATCHES_TOPIC": "fuzz-batches",
            "ADVREC_WINDOW_MAX_SECONDS": "2",
            "ADVREC_FRAUD_FLAGS_TOPIC": "fuzz-flags",
        },
    )
    worker.start()
    try:
        worker.wait_http(f"{base}/metrics")
        send_raw(kafka_broker, TOPIC, records)

        def accounted():
            s = scrape_metrics(f"{base}/metrics")
            return (
                metric_total(s, "advrec_events_processed_total"),
                metric_total(s, "advrec_dead_letters_total"),
                metric_total(s, "advrec_events_duplicate_total"),
            )

        wait_for(lambda: sum(accounted()) >= len(records), 180, "every input accounted for", worker)
        processed, dead, dup = accounted()
        print(
            f"\nfuzz: {len(records)} inputs = {processed:.0f} processed + {dead:.0f} dead-lettered "
            f"+ {dup:.0f} duplicates ({hostile} hostile, {duplicates} sent twice)"
        )
        assert (processed, dead, dup) == (len(good), hostile, duplicates)
        assert worker.process.poll() is None  # still up

        letters = KafkaConsumer(
            f"{TOPIC}.deadletter",
            bootstrap_servers=kafka_broker,
            auto_offset_reset="earliest",
            consumer_timeout_ms=5000,
            fetch_max_bytes=64 << 20,
            max_partition_fetch_bytes=64 << 20,
        )
        offsets = Counter((m.partition, json.loads(m.value)["offset"]) for m in letters)
        letters.close()
        assert len(offsets) == hostile and set(offsets.values()) == {1}  # each hostile input once

        expected = Counter(e["user_id"] for e in good.values())
        for user, n in rng.sample(sorted(expected.items()), 40):
            assert _profile(base, user)["events"] == n

        def windowed() -> Counter:
            batches = KafkaConsumer(
                "fuzz-batches", bootstrap_servers=kafka_broker, auto_offset_reset="earliest", consumer_timeout_ms=3000
            )
            uris = {json.loads(m.value)["uri"] for m in batches}
            batches.close()
            return Counter(eid for uri in uris for eid in read_window(uri).column("event_id").to_pylist())

        counts = wait_for(
            lambda: (c := windowed()) and sum(c.values()) >= len(good) and c, 60, "every good event in a window", worker
        )
        assert set(counts) == set(good) and set(counts.values()) == {1}  # in exactly one announced window
    finally:
        worker.stop()
