"""Events → window files → `batches` announcements → one training round, on the real broker and real processes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kafka import KafkaConsumer, TopicPartition

from registry.model_registry import ModelRegistry
from streams.kafka.producer import produce_events, send_raw
from streams.kafka.topics import ensure_topics
from streams.local.broker import free_port
from streams.local.processes import AdvrecProcess, metric_total, scrape_metrics
from streams.sources.simulator import simulated_events
from tests.integration.conftest import broker_quirks, wait_for
from training.models import load_recommender

pytestmark = pytest.mark.integration

BAD = [b"{not json", json.dumps({"event_id": "b1", "user_id": "u1", "type": "click", "ts": 1.7e9}).encode()]


def _scrape(url: str) -> dict[str, float]:
    try:
        return scrape_metrics(url)
    except OSError:
        return {}


def test_events_become_windows_announcements_and_a_trained_model(kafka_broker, tmp_path):
    events = list(simulated_events(n_events=3000, n_users=150, n_items=300, seed=4))
    flagged_user = events[0]["user_id"]
    data_dir = tmp_path / "data"
    env = {
        "ADVREC_KAFKA_BOOTSTRAP": kafka_broker,
        **broker_quirks(),
        "ADVREC_APP_ID": "win",
        "ADVREC_EVENTS_TOPIC": "win-events",
        "ADVREC_DEADLETTER_TOPIC": "win-events.deadletter",
        "ADVREC_BATCHES_TOPIC": "win-batches",
        "ADVREC_FRAUD_FLAGS_TOPIC": "win-flags",
        "ADVREC_WINDOW_MAX_EVENTS": "800",
        "ADVREC_WINDOW_MAX_SECONDS": "1.0",
        # the flag below is injected by hand: no detector of its own on this worker
        "ADVREC_FRAUD_ENABLED": "false",
        "ADVREC_DATA_DIR": str(data_dir),
        "ADVREC_WEB_PORT": str(free_port()),
        "ADVREC_TRAINER_METRICS_PORT": str(free_port()),
        # the red-team probe with the learned attacker, wired in by the trainer's composition root
        "ADVREC_PROBE_ATTACK": "gan",
        "ADVREC_PROBE_GAN_STEPS": "5",
    }
    worker_url = f"http://127.0.0.1:{env['ADVREC_WEB_PORT']}/metrics"
    trainer_url = f"http://127.0.0.1:{env['ADVREC_TRAINER_METRICS_PORT']}/metrics"
    worker = AdvrecProcess(["worker"], env, tmp_path / "worker.log")
    trainer = AdvrecProcess(
        ["train", "--model", "apr", "--epochs", "5", "--idle-timeout", "6", "--min-batch-rows", str(len(events))],
        env,
        tmp_path / "trainer.log",
    )
    ensure_topics(kafka_broker, ["win-flags"], 4)
    send_raw(
        kafka_broker,
        "win-flags",
        [
            (
                flagged_user.encode(),
                json.dumps(
                    {
                        "user_id": flagged_user,
                        "score": 0.97,
                        "reasons": ["burst"],
                        "ts": time.time(),
                        "detector_version": "test-1",
                        "flagged": True,
                    }
                ).encode(),
            )
        ],
    )
    worker.start()
    try:
        worker.wait_http(worker_url)
        produce_events(kafka_broker, "win-events", events[:1500])
        send_raw(kafka_broker, "win-events", [(b"u1", payload) for payload in BAD])
        produce_events(kafka_broker, "win-events", events[1500:])

        # 1. windows: every valid event in exactly one Parquet file, invalid ones in none
        def rows_written():
            return metric_total(_scrape(worker_url), "advrec_window_rows_sum") >= len(events)

        wait_for(rows_written, 60, "every event in a window", worker)
        files = sorted((data_dir / "windows" / "win-events").rglob("*.parquet"))
        table = [pq.read_table(f) for f in files]
        ids = [i for t in table for i in t.column("event_id").to_pylist()]
        assert sorted(ids) == sorted(e["event_id"] for e in events)
        assert sum(t.num_rows for t in table) == len(events)
        for f, t in zip(files, table):  # named by partition and offset range, holding only that partition
            first, last = (int(x) for x in f.stem.split("-"))
            partition = int(f.parent.name[1:])
            assert set(t.column("partition").to_pylist()) == {partition}
            assert first <= min(t.column("offset").to_pylist()) and max(t.column("offset").to_pylist()) <= last
        assert not list((data_dir / "windows").rglob("*.tmp-*"))
        samples = scrape_metrics(worker_url)
        assert samples["advrec_windows_written_total"] == len(files)
        assert samples["advrec_fraud_detection_on"] == 0  # detection off: its alert must stay quiet

        # 2. one announcement per file
        consumer = KafkaConsumer(
            "win-batches", bootstrap_servers=kafka_broker, auto_offset_reset="earliest", consumer_timeout_ms=4000
        )
        announced = [json.loads(m.value) for m in consumer]
        consumer.close()
        assert sorted(a["path"] for a in announced) == sorted(
            f.relative_to(data_dir / "windows").as_posix() for f in files
        )
        assert sum(a["rows"] for a in announced) == len(events)
        assert all(a["uri"].startswith("file://") and a["min_kafka_ts"] <= a["max_kafka_ts"] for a in announced)

        # 3. the trainer: one round on all of it, a saved model and a report, then idle exit
        trainer.start()
        report_path = data_dir / "models" / "round-1.json"
        wait_for(report_path.exists, 600, "the first round's report", trainer)  # round 1 also runs the probe
        metrics = wait_for(
            lambda: (
                (s := _scrape(trainer_url)).get('advrec_training_rounds_total{outcome="success"}')
                and s.get("advrec_batches_pending") == 0
                and s
            ),
            180,  # the report is written before the round is registered in MLflow, which is slow under load
            "trainer metrics after the round",
            trainer,
        )
        trainer.process.wait(timeout=30)
        assert trainer.process.returncode == 0, trainer.log_tail()
    finally:
        trainer.stop()
        worker.stop()

    doc = json.loads(report_path.read_text())
    report, lineage = doc["report"], doc["lineage"]
    assert report["test_users"] > 50 and 0 < report["hr@10"] <= 1 and "0.25" in report["fgsm"]
    assert report["poisoning"]["attack"] == "gan" and len(report["poisoning"]["targets"]) == 5
    assert lineage["trainer_config"]["probe_attack"] == "gan"
    # the user flagged before the worker started: rows marked suspect as they were windowed, none trained
    flagged_rows = sum(e["user_id"] == flagged_user for e in events)
    assert report["rows"]["rows"] == len(events)
    assert report["rows"]["dropped_suspect"] + report["rows"]["dropped_flagged"] == flagged_rows
    assert report["rows"]["dropped_suspect"] > 0
    assert sorted(b["path"] for b in lineage["batches"]) == sorted(a["path"] for a in announced)
    assert lineage["detector_version"] == "test-1"
    model = load_recommender(data_dir / "models" / "round-1.pt")
    assert flagged_user not in model.users
    known = [u for u in model.users.ids[:5]]
    items, _ = model.recommend(known, k=10)
    assert items.shape == (5, 10) and all(i is not None for i in items.ravel())
    assert metrics['advrec_training_rounds_total{outcome="success"}'] == 1
    assert metrics['advrec_training_rounds_total{outcome="failure"}'] == 0
    assert metrics["advrec_batches_consumed_total"] == len(files)
    assert metrics["advrec_training_samples_total"] > 0
    assert metrics['advrec_model_hr_at_10{alias="latest"}'] == pytest.approx(report["hr@10"])
    assert metrics["advrec_batches_pending"] == 0
    # committed: the trainer group's offsets reach the end of `batches`
    group = KafkaConsumer(bootstrap_servers=kafka_broker, group_id="win-trainer", enable_auto_commit=False)
    try:
        committed = [
            group.committed(TopicPartition("win-batches", p)) or 0 for p in group.partitions_for_topic("win-batches")
        ]
    finally:
        group.close()
    assert sum(committed) == len(announced)
    # The trainer keeps the round's model as its base only if the gate promoted it (MLflow under DATA_DIR).
    state = json.loads((data_dir / "trainer" / "state.json").read_text())
    registry = ModelRegistry(f"sqlite:///{(data_dir / 'mlflow.db').resolve()}", cache_dir=tmp_path / "cache")
    (version,) = registry.list_versions()
    assert version["version"] == 1 and version["reasons"]
    if version["decision"] == "promote":
        assert state["base_version"] == 1 and Path(data_dir / "trainer" / "model-000001.pt").exists()
    else:
        assert state["base_version"] is None and state["model"] is None
