"""The scorer process on the real broker with a real MLflow store: serve, exclude seen, swap, dead letters."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch
from kafka import KafkaConsumer, KafkaProducer

from registry.announcements import UpdatePublisher
from registry.model_registry import ModelRegistry
from registry.promotion import GateConfig
from streams.kafka.topics import ensure_topics
from streams.local.broker import free_port
from streams.local.processes import AdvrecProcess, metric_total, scrape_metrics
from tests.integration.conftest import broker_quirks, wait_for
from training.models import BPRRecommender
from training.models.served import AsServed

pytestmark = pytest.mark.integration

GATE = GateConfig(min_hr_at_10=0.05, min_ndcg_at_10=0.02, min_eval_users=10)


def _model(seed: int) -> BPRRecommender:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"user": [f"u{x}" for x in rng.integers(0, 30, 1200)], "item": [f"i{x}" for x in rng.integers(0, 150, 1200)]}
    )
    return BPRRecommender(dim=8, epochs=2, seed=seed).fit(frame)


def _report(hr: float, ndcg: float, champion: dict | None = None) -> dict:
    """A round's report with every measurement the gate needs; `champion`: its numbers on the same set."""
    report = {
        "hr@10": hr,
        "ndcg@10": ndcg,
        "eval_users": 30,
        "fgsm": {"0.25": {"hr@10": hr, "ndcg@10": ndcg * 0.9}},
        "poisoning": {"lift": 0.0},
        "popularity": {"hr@10": hr / 2, "ndcg@10": ndcg / 2},
        "exposure": {"k": 10, "users": 30, "items": []},
    }
    return {**report, "champion": champion} if champion else report


def _scorer_env(kafka_broker: str, app_id: str, port: int, uri: str, tmp_path, topics: dict) -> dict[str, str]:
    """The environment of a scorer process under test: its broker, app id, port, store and topics."""
    return {
        "ADVREC_KAFKA_BOOTSTRAP": kafka_broker,
        **broker_quirks(),
        "ADVREC_APP_ID": app_id,
        "ADVREC_TOPIC_PARTITIONS": "2",
        "ADVREC_SCORER_METRICS_PORT": str(port),
        "ADVREC_MLFLOW_TRACKING_URI": uri,
        "ADVREC_DATA_DIR": str(tmp_path / "scorer"),
        **topics,
    }


class Responses:
    """Collects `recommendations` in a background thread."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.got: list[dict] = []
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=200, group_id=None
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer:
                self.got.append(json.loads(message.value))

    def ids(self) -> set[str]:
        return {r["request_id"] for r in list(self.got)}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


def test_scorer_serves_the_champion_and_switches_on_promotion_losing_no_request(kafka_broker, tmp_path):
    torch.set_num_threads(1)
    app_id = "scr"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    topics = {
        "ADVREC_REC_REQUESTS_TOPIC": "scr.requests",
        "ADVREC_RECOMMENDATIONS_TOPIC": "scr.recs",
        "ADVREC_REC_DEADLETTER_TOPIC": "scr.requests.deadletter",
        "ADVREC_MODEL_UPDATES_TOPIC": "scr.updates",
    }
    registry = ModelRegistry(
        uri,
        "advrec-recommender",
        GATE,
        cache_dir=tmp_path / "cache",
        notify=UpdatePublisher(kafka_broker, topics["ADVREC_MODEL_UPDATES_TOPIC"]),
    )
    first, second = _model(1), _model(2)
    assert registry.register_round(first, _report(0.5, 0.3), {"batch_files": ["w1"]})[1].promoted

    # The worker's profile changelog, written by hand: u1 has "seen" its best item.
    best = str(first.recommend(["u1"], k=1)[0][0, 0])
    changelog = f"{app_id}-profiles-changelog"
    ensure_topics(kafka_broker, [changelog], 2)
    producer = KafkaProducer(bootstrap_servers=kafka_broker, linger_ms=0)
    producer.send(changelog, key=b"u1", value=json.dumps({"user_id": "u1", "items": [best]}).encode())
    producer.flush()

    port = free_port()
    env = {**_scorer_env(kafka_broker, app_id, port, uri, tmp_path, topics), "ADVREC_SCORER_POLL_SECONDS": "300"}
    scorer = AdvrecProcess(["scorer"], env, tmp_path / "scorer.log").start()  # the switch must come from model.updates
    responses = Responses(kafka_broker, topics["ADVREC_RECOMMENDATIONS_TOPIC"])
    sent: list[str] = []

    def send(n: int, start: int) -> None:
        for i in range(start, start + n):
            user = f"u{i % 30}" if i % 10 else "stranger"
            producer.send(
                topics["ADVREC_REC_REQUESTS_TOPIC"],
                key=user.encode(),
                value=json.dumps({"request_id": f"r{i}", "user_id": user, "k": 5}).encode(),
            )
            sent.append(f"r{i}")
        producer.flush()

    try:
        base = f"http://127.0.0.1:{port}"
        scorer.wait_http(f"{base}/metrics", 60)
        wait_for(
            lambda: json.loads(__import__("urllib.request").request.urlopen(f"{base}/model").read())["profiles"] >= 1,
            30,
            "the profile changelog",
            scorer,
        )
        send(100, 0)
        producer.send(topics["ADVREC_REC_REQUESTS_TOPIC"], key=b"x", value=b"{not json")
        producer.send(
            topics["ADVREC_REC_REQUESTS_TOPIC"],
            key=b"x",
            value=json.dumps({"request_id": "bad-k", "user_id": "u1", "k": 0}).encode(),
        )
        producer.flush()
        wait_for(lambda: set(sent) <= responses.ids(), 60, "the first 100 answers", scorer)
        by_id = {r["request_id"]: r for r in responses.got}
        assert {by_id[r]["model_version"] for r in sent if by_id[r]["source"] == "model"} == {1}
        assert by_id["r0"]["source"] == "popularity" and by_id["r0"]["model_version"] == 0  # "stranger"
        u1 = [by_id[r] for r in sent if by_id[r]["user_id"] == "u1"]
        assert u1 and all(best not in r["items"] and len(r["items"]) == 5 for r in u1)
        # u1's profile holds an item the model knows: it is ranked by that profile, as the gate measured it
        as_served = AsServed(first, pd.DataFrame({"user": ["u1"], "item": [best]}))
        assert all(r["source"] == "profile" for r in u1)
        assert u1[0]["items"] == [str(x) for x in as_served.recommend(["u1"], k=5)[0][0]]
        expected = [str(x) for x in first.recommend(["u2"], k=5)[0][0]]
        assert by_id["r2"]["items"] == expected

        # Promote a new version while requests keep coming.
        stop = threading.Event()

        def keep_sending() -> None:
            i = 1000
            while not stop.is_set():
                send(10, i)
                i += 10
                time.sleep(0.05)

        sender = threading.Thread(target=keep_sending)
        sender.start()
        try:
            time.sleep(1.0)
            version, decision = registry.register_round(
                second, _report(0.55, 0.32, {**_report(0.5, 0.3), "version": 1}), {"batch_files": ["w2"]}
            )
            assert (version, decision.action) == (2, "promote")
            wait_for(lambda: any(r["model_version"] == 2 for r in list(responses.got)), 60, "version 2 served", scorer)
            time.sleep(1.0)
        finally:
            stop.set()
            sender.join()
        wait_for(lambda: set(sent) <= responses.ids(), 60, "every request answered", scorer)
        answered = [r for r in responses.got if r["source"] == "model"]
        switch = min(r["served_at"] for r in answered if r["model_version"] == 2)
        assert all(r["model_version"] == 2 for r in answered if r["served_at"] > switch)
        assert any(
            r["model_version"] == 1 and r["request_id"].startswith("r1") and int(r["request_id"][1:]) >= 1000
            for r in answered
        )  # the switch happened while requests were flowing
        late = [r for r in answered if r["model_version"] == 2 and r["user_id"] == "u3"]
        assert late and late[-1]["items"] == [str(x) for x in second.recommend(["u3"], k=5)[0][0]]

        samples = scrape_metrics(f"{base}/metrics")
        assert samples["advrec_serving_model_version"] == 2
        assert samples["advrec_model_swaps_total"] == 1
        assert metric_total(samples, "advrec_recommendations_total") >= len(sent)
        assert samples['advrec_recommendations_total{source="popularity"}'] >= 10
        assert samples['advrec_recommendations_total{source="profile"}'] >= len(u1)
        assert samples['advrec_scorer_requests_rejected_total{reason="bad_request"}'] == 2
        assert samples["advrec_scoring_latency_seconds_count"] >= len(sent)

        letters = KafkaConsumer(
            topics["ADVREC_REC_DEADLETTER_TOPIC"],
            bootstrap_servers=kafka_broker,
            auto_offset_reset="earliest",
            consumer_timeout_ms=3000,
        )
        codes = sorted(json.loads(m.value)["code"] for m in letters)
        letters.close()
        assert codes == ["bad_k", "malformed_json"]
    finally:
        responses.close()
        producer.close()
        scorer.stop()


def test_the_popularity_fallback_counts_trusted_users_not_a_farms_accounts(kafka_broker, tmp_path):
    # No champion: every request gets the popularity list. Counted over every account, the farm's
    # target leads (6 accounts against 3); the list must rank by trusted accounts instead (each
    # item's share of them, capped by its share of every account).
    app_id, flags_topic = "pop", "pop.flags"
    topics = {
        "ADVREC_REC_REQUESTS_TOPIC": "pop.requests",
        "ADVREC_RECOMMENDATIONS_TOPIC": "pop.recs",
        "ADVREC_REC_DEADLETTER_TOPIC": "pop.requests.deadletter",
        "ADVREC_MODEL_UPDATES_TOPIC": "pop.updates",
        "ADVREC_FRAUD_FLAGS_TOPIC": flags_topic,
    }
    profiles = f"{app_id}-profiles-changelog"
    ensure_topics(kafka_broker, [profiles, *topics.values()], 2)
    producer = KafkaProducer(bootstrap_servers=kafka_broker, linger_ms=0)

    def put(topic: str, key: str, value: dict) -> None:
        producer.send(topic, key=key.encode(), value=json.dumps(value).encode())

    def flag(user: str, trusted: bool, flagged: bool = False) -> None:
        record = {"user_id": user, "score": 0.9 if flagged else 0.0, "reasons": [], "ts": 0.0}
        put(flags_topic, user, {**record, "detector_version": "t", "flagged": flagged, "trusted": trusted})

    for user, seen in {"t1": ["a", "b", "c"], "t2": ["a", "b"], "t3": ["a"]}.items():
        put(profiles, user, {"user_id": user, "items": seen})
        flag(user, trusted=True)
    for k in range(6):  # the farm: on its target; flagged, or too new to be trusted
        put(profiles, f"f{k}", {"user_id": f"f{k}", "items": ["target"]})
        flag(f"f{k}", trusted=False, flagged=k < 3)
    producer.flush()

    port = free_port()
    env = _scorer_env(kafka_broker, app_id, port, f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, topics)
    scorer = AdvrecProcess(["scorer"], env, tmp_path / "scorer.log").start()
    responses = Responses(kafka_broker, topics["ADVREC_RECOMMENDATIONS_TOPIC"])

    def ask(request_id: str) -> list[str]:
        """The stranger's list ([] if no answer came: a request before any ranking is dead-lettered)."""
        put(topics["ADVREC_REC_REQUESTS_TOPIC"], "stranger", {"request_id": request_id, "user_id": "stranger", "k": 4})
        producer.flush()
        deadline = time.monotonic() + 5
        while request_id not in responses.ids() and time.monotonic() < deadline:
            time.sleep(0.1)
        answer = next((r for r in list(responses.got) if r["request_id"] == request_id), None)
        if answer is None:
            return []
        assert answer["source"] == "popularity" and answer["model_version"] == 0
        return answer["items"]

    try:
        scorer.wait_http(f"http://127.0.0.1:{port}/metrics", 60)
        # shares of the 3 trusted, capped by shares of all 9 accounts: a 3/9, b 2/9, c 1/9; the
        # farm's target (6 of 9 accounts) held by no trusted account: out
        wait_for(lambda: ask(f"q{time.monotonic_ns()}") == ["a", "b", "c"], 60, "the trusted ranking", scorer)
        # one farm account earns trust (its flag cleared, or the detector missed it): the target
        # counts as any item of a trusted account, 1 of 4 trusted (below its 6/9 of every account)
        flag("f4", trusted=True)
        producer.flush()
        wait_for(lambda: ask(f"q{time.monotonic_ns()}") == ["a", "target", "b", "c"], 60, "f4 counted", scorer)
        # trusted accounts flagged later stop counting: t2 and t3 remain, and only t1 held c
        flag("f4", trusted=False, flagged=True)
        flag("t1", trusted=False, flagged=True)
        producer.flush()
        wait_for(lambda: ask(f"q{time.monotonic_ns()}") == ["a", "b"], 60, "f4 and t1 dropped", scorer)
    finally:
        responses.close()
        producer.close()
        scorer.stop()
