"""Resilience: serving goes on when MLflow stops; a trainer killed mid-round resumes cleanly."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import numpy as np
import pandas as pd
import pytest
import torch
from kafka import KafkaConsumer

from registry.model_registry import ModelRegistry
from registry.promotion import GateConfig
from streams.kafka.producer import produce_events, send_raw
from streams.local.broker import free_port
from streams.local.cluster import ClusterConfig, LocalCluster
from streams.local.processes import AdvrecProcess, scrape_metrics
from streams.sources.simulator import simulated_events
from tests.integration.conftest import broker_quirks, mlflow_server_process, wait_for
from training.models import BPRRecommender

pytestmark = pytest.mark.integration


def _requests(users: list[str], tag: str) -> list[tuple[bytes, bytes]]:
    return [
        (u.encode(), json.dumps({"request_id": f"{tag}-{i}-{uuid.uuid4().hex[:6]}", "user_id": u, "k": 5}).encode())
        for i, u in enumerate(users)
    ]


def test_scorer_keeps_serving_its_model_when_mlflow_stops(kafka_broker, tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(0, 30, 900).astype(str), "item": rng.integers(0, 80, 900).astype(str)})
    model = BPRRecommender(dim=8, epochs=2, seed=0).fit(frame)
    users = sorted(set(frame["user"]))[:20]
    topics = {
        "ADVREC_REC_REQUESTS_TOPIC": "res.requests",
        "ADVREC_RECOMMENDATIONS_TOPIC": "res.recs",
        "ADVREC_REC_DEADLETTER_TOPIC": "res.requests.deadletter",
        "ADVREC_MODEL_UPDATES_TOPIC": "res.updates",
    }
    (tmp_path / "mlflow").mkdir()
    with mlflow_server_process(tmp_path / "mlflow") as (url, stop_mlflow):
        registry = ModelRegistry(url, "resilience", GateConfig(min_eval_users=1))
        report = {
            "hr@10": 0.5,
            "ndcg@10": 0.3,
            "eval_users": 30,
            "fgsm": {"0.25": {"hr@10": 0.45, "ndcg@10": 0.27}},
            "poisoning": {"lift": 0.0},
            "popularity": {"hr@10": 0.25, "ndcg@10": 0.15},
        }
        version, decision = registry.register_round(model, report, {"batch_files": []})
        assert decision.action == "promote"
        port = free_port()
        scorer = AdvrecProcess(
            ["scorer"],
            {
                "ADVREC_KAFKA_BOOTSTRAP": kafka_broker,
                **broker_quirks(),
                "ADVREC_APP_ID": "resilience",
                "ADVREC_MODEL_NAME": "resilience",
                "ADVREC_MLFLOW_TRACKING_URI": url,
                "ADVREC_SCORER_METRICS_PORT": str(port),
                "ADVREC_SCORER_POLL_SECONDS": "1",
                "ADVREC_DATA_DIR": str(tmp_path / "scorer"),
                **topics,
            },
            tmp_path / "scorer.log",
        ).start()
        consumer = KafkaConsumer(
            topics["ADVREC_RECOMMENDATIONS_TOPIC"],
            bootstrap_servers=kafka_broker,
            auto_offset_reset="earliest",
            consumer_timeout_ms=500,
        )
        answers: dict[str, dict] = {}

        def answered(prefix: str, n: int) -> bool:
            for message in consumer:
                answer = json.loads(message.value)
                answers[answer["request_id"]] = answer
            return sum(1 for r in answers if r.startswith(prefix)) >= n

        try:
            scorer.wait_http(f"http://127.0.0.1:{port}/metrics", 60)
            wait_for(
                lambda: (
                    scrape_metrics(f"http://127.0.0.1:{port}/metrics").get("advrec_serving_model_version") == version
                ),
                60,
                "the champion loaded",
                scorer,
            )
            send_raw(kafka_broker, topics["ADVREC_REC_REQUESTS_TOPIC"], _requests(users, "before"))
            wait_for(lambda: answered("before", len(users)), 60, "answers before the outage", scorer)

            stop_mlflow()
            with pytest.raises(OSError):
                urllib.request.urlopen(f"{url}/health", timeout=2)
            time.sleep(4)  # several alias polls fail meanwhile
            send_raw(kafka_broker, topics["ADVREC_REC_REQUESTS_TOPIC"], _requests(users, "during"))
            wait_for(lambda: answered("during", len(users)), 60, "answers during the outage", scorer)
            assert scorer.process.poll() is None
        finally:
            consumer.close()
            scorer.stop()
    during = [a for r, a in answers.items() if r.startswith("during")]
    assert len(during) == len(users)
    champion = ("profile", "model")  # sources: over the user's profile, or by its trained row
    assert all(a["model_version"] == version and a["source"] in champion and len(a["items"]) == 5 for a in during)


def test_trainer_killed_mid_round_resumes_and_registers_no_half_made_model(kafka_broker, tmp_path):
    config = ClusterConfig(
        state_dir=tmp_path / "state",
        bootstrap=kafka_broker,
        window_max_events=1_000,
        window_max_seconds=2.0,
        # A first round long enough that the kill lands in its training (60 epochs of these 3,000
        # rows took under a second): a kill -9 between a version's registration and the trainer's
        # state save registers that round twice (docs/training.md), which this test does not allow.
        trainer_args=("--min-batch-rows", "2500", "--first-epochs", "300", "--epochs", "3"),
        extra_env={
            **broker_quirks(),
            "ADVREC_APP_ID": "trainkill",
            "ADVREC_EVENTS_TOPIC": "trainkill.events",
            "ADVREC_BATCHES_TOPIC": "trainkill.batches",
            "ADVREC_FRAUD_FLAGS_TOPIC": "trainkill.flags",
            "ADVREC_MODEL_UPDATES_TOPIC": "trainkill.updates",
        },
    )
    cluster = LocalCluster(config)
    cluster.init_mlflow()
    try:
        cluster.start("worker")
        trainer = cluster.start("trainer")
        produce_events(
            kafka_broker, "trainkill.events", simulated_events(n_events=6_000, n_users=300, n_items=200, seed=4)
        )

        log = config.state_dir / "trainer.log"
        wait_for(lambda: "round 1: training on" in log.read_text(errors="replace"), 120, "round 1 training", trainer)
        time.sleep(0.3)
        assert "round 1: {" not in log.read_text(errors="replace"), "round 1 ended before the kill"
        trainer.kill9()
        killed_rounds = len(ModelRegistry(cluster.mlflow_uri, "advrec-recommender").list_versions())

        # The restarted trainer's round is only waited for: the long first round was for the kill
        # to land in (300 epochs of its ~9,000 rows took a minute of the suite).
        config.trainer_args = ("--min-batch-rows", "2500", "--first-epochs", "20", "--epochs", "3")
        trainer = cluster.start("trainer")
        # more events, so the restarted trainer has a round of its own to finish
        produce_events(
            kafka_broker, "trainkill.events", simulated_events(n_events=3_000, n_users=300, n_items=200, seed=5)
        )

        def resumed():
            metrics = cluster.metrics("trainer")
            return metrics.get('advrec_training_rounds_total{outcome="success"}', 0) >= 1 and metrics

        wait_for(resumed, 180, "a completed round after the restart", trainer)
    finally:
        cluster.stop()

    registry = ModelRegistry(cluster.mlflow_uri, "advrec-recommender")
    versions = registry.list_versions()
    assert len(versions) >= 1 and killed_rounds <= len(versions)
    for row in versions:  # every registered version is whole: decided and loadable
        assert row["decision"] in {"promote", "hold", "reject"}
        assert registry.load_version(row["version"]).recommend(["u1"], k=3)[0].shape == (1, 3)
    assert not list((config.state_dir / "models").glob("*.tmp"))
    state = json.loads((config.state_dir / "trainer" / "state.json").read_text())
    assert state["round"] == len(versions)
