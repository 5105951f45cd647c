"""The stream worker against the real embedded broker: accounting, dead letters, kill -9 recovery."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter

import pyarrow.parquet as pq
import pytest
from kafka import KafkaConsumer, TopicPartition

from streams.kafka.producer import produce_events, send_raw
from streams.local.broker import TansuBroker, free_port
from streams.local.processes import AdvrecProcess, metric_total, scrape_metrics
from streams.sources.simulator import simulated_events
from streams.worker.metrics import STAGES
from tests.integration.conftest import broker_quirks, wait_for

pytestmark = pytest.mark.integration

BAD_PAYLOADS = {
    b"{not json": "malformed_json",
    b'"just a string"': "not_an_object",
    json.dumps({"event_id": "b1", "user_id": "u1", "type": "click", "ts": 1.7e9}).encode(): "missing_field",
    json.dumps({"event_id": "b2", "user_id": 7, "item_id": "i1", "type": "click", "ts": 1.7e9}).encode(): "wrong_type",
    json.dumps(
        {"event_id": "b3", "user_id": "u1", "item_id": "i1", "type": "like", "ts": 1.7e9}
    ).encode(): "unknown_type",
    json.dumps(
        {"event_id": "b4", "user_id": "u1", "item_id": "i1", "type": "rating", "ts": 1.7e9, "value": 11}
    ).encode(): "rating_out_of_scale",
    json.dumps(
        {"event_id": "b5", "user_id": "u1", "item_id": "i1", "type": "click", "ts": 4.0e9}
    ).encode(): "ts_in_future",
    json.dumps(
        {"event_id": "b6", "user_id": "u1", "item_id": "i1", "type": "purchase", "ts": 1.7e9, "value": -3}
    ).encode(): "value_out_of_range",
    json.dumps(
        {"event_id": "b7", "user_id": "u1", "item_id": "x" * 20_000, "type": "click", "ts": 1.7e9}
    ).encode(): "oversized",
}


def _worker(
    tmp_path, bootstrap: str, app_id: str, topic: str, quirks: dict | None = None, extra: dict | None = None
) -> tuple[AdvrecProcess, str]:
    port = free_port()
    env = {
        "ADVREC_KAFKA_BOOTSTRAP": bootstrap,
        **(broker_quirks() if quirks is None else quirks),
        "ADVREC_APP_ID": app_id,
        "ADVREC_EVENTS_TOPIC": topic,
        "ADVREC_DEADLETTER_TOPIC": f"{topic}.deadletter",
        "ADVREC_WEB_PORT": str(port),
        "ADVREC_DATA_DIR": str(tmp_path / app_id),
        # offsets commit once the window sink has written its window too: close windows quickly
        "ADVREC_WINDOW_MAX_SECONDS": "1",
        **(extra or {}),
    }
    process = AdvrecProcess(["worker"], env, tmp_path / f"{app_id}.log")
    return process, f"http://127.0.0.1:{port}"


def _profile(base: str, user: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{base}/profiles/{urllib.parse.quote(user, safe='')}", timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _item(base: str, item: str) -> dict:
    with urllib.request.urlopen(f"{base}/items/{urllib.parse.quote(item, safe='')}", timeout=5) as response:
        return json.loads(response.read())


def _processed(base: str) -> float:
    samples = scrape_metrics(f"{base}/metrics")
    return (
        metric_total(samples, "advrec_events_processed_total")
        + metric_total(samples, "advrec_dead_letters_total")
        + metric_total(samples, "advrec_events_duplicate_total")
    )


def _comparable(profile: dict) -> dict:
    # item_popularity_mean depends on how partitions interleave, which differs between runs.
    return {k: v for k, v in profile.items() if k != "item_popularity_mean"}


@pytest.fixture(params=["kafka", "kafka-consumer-thread", "tansu"])
def any_broker(request, kafka_broker):
    """(bootstrap, worker settings, a name for the case's topics): the session's Apache Kafka with the
    consumer on the worker's loop and in a thread of its own (as Faust runs it; its own topics on
    the shared broker), and a Tansu broker (the fallback without Java, with its workarounds)."""
    if request.param == "kafka":
        yield kafka_broker, {}, "acct"
    elif request.param == "kafka-consumer-thread":
        yield kafka_broker, {"ADVREC_CONSUMER_THREAD": "true"}, "acct-thread"
    else:
        with TansuBroker() as tansu:
            yield tansu.bootstrap, {"ADVREC_TANSU_WORKAROUNDS": "1"}, "acct"


def test_valid_and_invalid_events_are_all_accounted_for(any_broker, tmp_path):
    kafka_broker, quirks, name = any_broker
    topic = f"{name}-events"
    events = list(simulated_events(n_events=1500, n_users=120, n_items=300, seed=3))
    worker, base = _worker(tmp_path, kafka_broker, name, topic, quirks)
    worker.start()
    try:
        worker.wait_http(f"{base}/metrics")
        produce_events(kafka_broker, topic, events[:700])
        send_raw(kafka_broker, topic, [(b"u1", payload) for payload in BAD_PAYLOADS])
        produce_events(kafka_broker, topic, events[700:])
        total = len(events) + len(BAD_PAYLOADS)
        wait_for(lambda: _processed(base) >= total, 90, "all inputs processed", worker)

        samples = scrape_metrics(f"{base}/metrics")
        assert metric_total(samples, "advrec_events_processed_total") == len(events)
        assert metric_total(samples, "advrec_dead_letters_total") == len(BAD_PAYLOADS)
        for code in set(BAD_PAYLOADS.values()):
            assert samples[f'advrec_dead_letters_total{{reason="{code}"}}'] >= 1

        expected = Counter((e["user_id"], e["type"]) for e in events)
        for user in {e["user_id"] for e in events}:
            counts = _profile(base, user)["counts"]
            for kind in ("click", "purchase", "rating"):
                assert counts[kind] == expected[(user, kind)], (user, kind)
        assert _profile(base, "never-seen") is None

        def lag_drained():
            lag = {k: v for k, v in scrape_metrics(f"{base}/metrics").items() if k.startswith("advrec_consumer_lag{")}
            return len(lag) == 4 and all(v == 0 for v in lag.values()) and lag

        lag = wait_for(lag_drained, 30, "consumer lag exported for 4 partitions and drained", worker)
        assert all(f'topic="{topic}"' in k for k in lag)

        consumer = KafkaConsumer(
            f"{topic}.deadletter",
            bootstrap_servers=kafka_broker,
            auto_offset_reset="earliest",
            consumer_timeout_ms=5000,
        )
        letters = [json.loads(m.value) for m in consumer]
        consumer.close()
        assert len(letters) == len(BAD_PAYLOADS)
        assert Counter(letter["code"] for letter in letters) == Counter(BAD_PAYLOADS.values())
        for letter in letters:
            assert letter["reason"].startswith(letter["code"] + ":")
            assert letter["topic"] == topic and letter["offset"] >= 0 and letter["raw"]

        # Recovery reads a changelog up to the end offset the broker reports: it must count every record
        # (Tansu's counts from the last batch's base offset: `Changelogs.single_record_tail`).
        last, ends = _last_offsets(kafka_broker, f"{name}-profiles-changelog")
        assert sum(ends.values()) >= len({e["user_id"] for e in events})  # every user's profile, at least once
        assert {p: end - 1 for p, end in ends.items() if end} == last
    finally:
        worker.stop()


def _last_offsets(bootstrap: str, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """({partition: offset of its last record, as read}, {partition: end offset, as the broker reports it})."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        last = {m.partition: m.offset for m in consumer}  # every record, until none comes for 3 s
        return last, {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def test_kill_9_mid_stream_restores_profiles_exactly(kafka_or_tansu, tmp_path):
    kafka_broker, quirks = kafka_or_tansu
    events = list(simulated_events(n_events=6000, n_users=150, n_items=400, seed=11))
    users = sorted({e["user_id"] for e in events})

    # Reference: the same events through a worker that is never killed.
    reference, ref_base = _worker(tmp_path, kafka_broker, "ref", "ref-events", quirks)
    reference.start()
    try:
        reference.wait_http(f"{ref_base}/metrics")
        produce_events(kafka_broker, "ref-events", events)
        wait_for(lambda: _processed(ref_base) >= len(events), 120, "reference run", reference)
        expected = {user: _comparable(_profile(ref_base, user)) for user in users}
    finally:
        reference.stop()

    victim, base = _worker(tmp_path, kafka_broker, "victim", "victim-events", quirks)
    victim.start()
    victim.wait_http(f"{base}/metrics")
    producer = threading.Thread(
        target=produce_events, args=(kafka_broker, "victim-events", events), kwargs={"rate": 2_000.0}
    )
    producer.start()
    try:
        wait_for(lambda: _processed(base) >= len(events) // 3, 90, "a third processed", victim)
        victim.kill9()
        producer.join()
        victim.start()
        victim.wait_http(f"{base}/metrics")

        def all_applied():
            try:
                profiles = [_profile(base, user) for user in users]
            except urllib.error.HTTPError as exc:
                if exc.code == 503:  # still recovering its tables: the view says so, not 404
                    return False
                raise
            return sum(p["events"] for p in profiles if p) == len(events)

        wait_for(all_applied, 150, "every event applied after restart", victim)
        time.sleep(2)  # nothing more may arrive: a double application would show now
        restored = {user: _comparable(_profile(base, user)) for user in users}
    finally:
        victim.stop()
    assert restored == expected


def test_envelopes_each_event_its_own_verdict_and_every_event_once(kafka_broker, tmp_path):
    """JSON arrays of events (`produce --envelope`): profiles, items and windows as if sent one by one."""
    events = list(simulated_events(n_events=2000, n_users=150, n_items=200, seed=5))
    bad_event = {"event_id": "bad-1", "user_id": "u1", "item_id": "i1", "type": "like", "ts": 1.7e9}
    worker, base = _worker(tmp_path, kafka_broker, "env", "env-events")
    worker.start()
    try:
        worker.wait_http(f"{base}/metrics")
        produce_events(kafka_broker, "env-events", events[:1000], envelope=50)
        send_raw(kafka_broker, "env-events", [(b"u1", b"[1, 2"), (b"u1", json.dumps([bad_event]).encode())])
        produce_events(kafka_broker, "env-events", events[1000:], envelope=50)
        produce_events(kafka_broker, "env-events", events[:100], envelope=25)  # resent by their producer
        total = len(events) + 2 + 100
        wait_for(lambda: _processed(base) >= total, 90, "every input processed", worker)
        samples = scrape_metrics(f"{base}/metrics")
        assert metric_total(samples, "advrec_events_processed_total") == len(events)
        assert metric_total(samples, "advrec_events_duplicate_total") == 100
        assert samples['advrec_dead_letters_total{reason="malformed_json"}'] == 1
        assert samples['advrec_dead_letters_total{reason="unknown_type"}'] == 1

        expected = Counter((e["user_id"], e["type"]) for e in events)
        for user in {e["user_id"] for e in events}:
            counts = _profile(base, user)["counts"]
            assert [counts[k] for k in ("click", "purchase", "rating")] == [
                expected[(user, k)] for k in ("click", "purchase", "rating")
            ], user
        by_item = Counter(e["item_id"] for e in events)
        sample = list(by_item)[:20]

        def items_counted():  # the item table is fed through its own topic: it may lag ingest a little
            try:
                return all(_item(base, item)["events"] == by_item[item] for item in sample)
            except urllib.error.HTTPError as exc:
                if exc.code in (404, 503):
                    return False
                raise

        wait_for(items_counted, 60, "every sampled item counted exactly", worker)

        def stages():
            samples = scrape_metrics(f"{base}/metrics")
            return {stage: samples[f'advrec_stage_events_total{{stage="{stage}"}}'] for stage in STAGES}

        # every stage downstream takes in each valid event once: the resent 100 and the bad ones never
        wait_for(lambda: all(n >= len(events) for n in stages().values()), 60, "every stage caught up", worker)
        assert stages() == dict.fromkeys(STAGES, len(events))

        def windowed():
            files = list((tmp_path / "env" / "windows" / "env-events").rglob("*.parquet"))
            ids = [i for f in files for i in pq.read_table(f).column("event_id").to_pylist()]
            return len(ids) >= len(events) and ids

        ids = wait_for(windowed, 60, "every event in a window", worker)
        assert sorted(ids) == sorted(e["event_id"] for e in events)

        consumer = KafkaConsumer(
            "env-events.deadletter",
            bootstrap_servers=kafka_broker,
            auto_offset_reset="earliest",
            consumer_timeout_ms=4000,
        )
        letters = sorted((json.loads(m.value) for m in consumer), key=lambda letter: letter["code"])
        consumer.close()
        assert [(x["code"], x["index"]) for x in letters] == [("malformed_json", None), ("unknown_type", 0)]
        assert json.loads(letters[1]["raw"])["event_id"] == "bad-1"
    finally:
        worker.stop()
