"""An item that arrives only through `catalog` is recommended by the scorer after one training round.

Real processes on the real broker and a real MLflow store: `advrec produce --catalog` → worker
(catalog table, dead letters) → `advrec train --model hybrid` (one round, the default text
encoder, registered and promoted) → `advrec scorer` → a request whose answer holds the new item.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pytest
from kafka import KafkaConsumer, KafkaProducer

from registry.model_registry import ModelRegistry
from registry.promotion import GateConfig
from streams.kafka.producer import produce_events, send_raw
from streams.local.broker import free_port
from streams.local.processes import AdvrecProcess, metric_total, scrape_metrics
from tests.integration.conftest import broker_quirks, wait_for
from tests.integration.serving.test_scorer import Responses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # three processes and a 30-epoch round

SPACE, COOKING = [str(i) for i in range(1, 31)], [str(i) for i in range(31, 61)]
NEW_ITEM = "new-space-film"  # in the catalog only: nobody ever interacts with it


def _catalog_file(path) -> None:
    rows = ["movieId,title,genres"]
    rows += [f"{i},Space film {i} (1999),Sci-Fi|Space" for i in SPACE]
    rows += [f"{i},Cooking show {i} (2005),Cooking|Documentary" for i in COOKING]
    rows += [f"{NEW_ITEM},The newest space film (1999),Sci-Fi|Space"]
    path.write_text("\n".join(rows) + "\n")


def _events(n_users: int = 40, per_user: int = 25, seed: int = 3) -> list[dict]:
    """Even users watch 25 of the 30 space films, odd users 25 of the 30 cooking shows."""
    rng = np.random.default_rng(seed)
    now, events = time.time() - 3600, []
    for u in range(n_users):
        pool = SPACE if u % 2 == 0 else COOKING
        for k, item in enumerate(rng.choice(pool, size=per_user, replace=False)):
            events.append(
                {"event_id": f"e{u}-{k}", "user_id": f"u{u}", "item_id": str(item), "type": "click", "ts": now + k}
            )
    rng.shuffle(events)
    return events


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def test_an_item_only_in_the_catalog_is_recommended_after_one_round(kafka_broker, tmp_path):
    app_id = "cold"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {
        "ADVREC_KAFKA_BOOTSTRAP": kafka_broker,
        **broker_quirks(),
        "ADVREC_APP_ID": app_id,
        "ADVREC_TOPIC_PARTITIONS": "2",
        "ADVREC_EVENTS_TOPIC": "cold-events",
        "ADVREC_DEADLETTER_TOPIC": "cold-events.deadletter",
        "ADVREC_CATALOG_TOPIC": "cold-catalog",
        "ADVREC_BATCHES_TOPIC": "cold-batches",
        "ADVREC_FRAUD_FLAGS_TOPIC": "cold-flags",
        "ADVREC_FRAUD_LABELS_TOPIC": "cold-labels",
        "ADVREC_FRAUD_ENABLED": "false",
        "ADVREC_WINDOW_MAX_SECONDS": "1.0",
        "ADVREC_REC_REQUESTS_TOPIC": "cold.requests",
        "ADVREC_RECOMMENDATIONS_TOPIC": "cold.recs",
        "ADVREC_REC_DEADLETTER_TOPIC": "cold.requests.deadletter",
        "ADVREC_MODEL_UPDATES_TOPIC": "cold.updates",
        "ADVREC_MLFLOW_TRACKING_URI": uri,
        "ADVREC_SCORER_POLL_SECONDS": "2",
        "ADVREC_DATA_DIR": str(tmp_path / "data"),
        "ADVREC_WEB_PORT": str(free_port()),
        "ADVREC_TRAINER_METRICS_PORT": str(free_port()),
        "ADVREC_SCORER_METRICS_PORT": str(free_port()),
    }
    worker_url = f"http://127.0.0.1:{env['ADVREC_WEB_PORT']}"
    scorer_url = f"http://127.0.0.1:{env['ADVREC_SCORER_METRICS_PORT']}"
    catalog = tmp_path / "movies.csv"
    _catalog_file(catalog)
    events = _events()

    worker = AdvrecProcess(["worker"], env, tmp_path / "worker.log")
    trainer = AdvrecProcess(
        [
            "train",
            "--model",
            "hybrid",
            "--first-epochs",
            "30",
            "--max-rounds",
            "1",
            "--min-batch-rows",
            str(len(events)),
        ],
        env,
        tmp_path / "trainer.log",
    )
    scorer = AdvrecProcess(["scorer"], env, tmp_path / "scorer.log")
    producer = KafkaProducer(bootstrap_servers=kafka_broker, linger_ms=0)
    responses = None
    try:
        worker.start()
        worker.wait_http(f"{worker_url}/metrics", 90)
        produce = AdvrecProcess(["produce", "--catalog", str(catalog)], env, tmp_path / "produce.log").start()
        produce.process.wait(timeout=120)
        assert produce.process.returncode == 0, produce.log_tail()
        # bad entries: dead letters with their reason, never in the table
        send_raw(
            kafka_broker,
            "cold-catalog",
            [(b"bad-1", b"{not json"), (b"bad-2", json.dumps({"item_id": "other", "title": "x"}).encode())],
        )
        entry = wait_for(
            lambda: _get(f"{worker_url}/catalog/{NEW_ITEM}"), 60, "the new item in the catalog table", worker
        )
        assert entry == {
            "item_id": NEW_ITEM,
            "title": "The newest space film",
            "description": "",
            "categories": ["Sci-Fi", "Space"],
            "year": 1999,
        }
        wait_for(
            lambda: metric_total(scrape_metrics(f"{worker_url}/metrics"), "advrec_catalog_dead_letters_total") >= 2,
            30,
            "the catalog dead letters",
            worker,
        )
        samples = scrape_metrics(f"{worker_url}/metrics")
        assert samples['advrec_catalog_dead_letters_total{reason="malformed_json"}'] == 1
        assert samples['advrec_catalog_dead_letters_total{reason="key_mismatch"}'] == 1
        assert samples['advrec_catalog_updates_total{action="written"}'] == len(SPACE) + len(COOKING) + 1
        assert _get(f"{worker_url}/catalog/bad-2") is None
        letters = KafkaConsumer(
            "cold-events.deadletter",
            bootstrap_servers=kafka_broker,
            auto_offset_reset="earliest",
            consumer_timeout_ms=3000,
        )
        codes = sorted(json.loads(m.value)["code"] for m in letters)
        letters.close()
        assert codes == ["key_mismatch", "malformed_json"]

        # events: nobody ever touches the new item
        produce_events(kafka_broker, "cold-events", events)
        assert all(e["item_id"] != NEW_ITEM for e in events)
        trainer.start()
        trainer.process.wait(timeout=300)
        assert trainer.process.returncode == 0, trainer.log_tail()

        registry = ModelRegistry(uri, "advrec-recommender", GateConfig(), cache_dir=tmp_path / "cache")
        champion = registry.champion_version()
        assert champion == 1, trainer.log_tail()
        params = mlflow.MlflowClient(uri).get_run(registry.version_tags(champion)["run_id"]).data.params
        assert params["kind"] == "hybrid" and params["text.encoder"] == "minilm"
        assert params["text.encoder_version"].startswith("0.1.2/")
        model = registry.load_version(champion)
        index = model.items.lookup([NEW_ITEM])[0]
        assert index >= 0 and not model.net.trained[index]  # in the model from its text alone

        # the scorer serves the champion, the new item included
        scorer.start()
        scorer.wait_http(f"{scorer_url}/metrics", 90)
        wait_for(lambda: (_get(f"{scorer_url}/model") or {}).get("model_version") == 1, 60, "the champion", scorer)
        responses = Responses(kafka_broker, "cold.recs")
        space_fans = [f"u{u}" for u in range(0, 40, 2)]
        for n, user in enumerate(space_fans):
            request = {"request_id": f"r{n}", "user_id": user, "k": 10}
            producer.send("cold.requests", key=user.encode(), value=json.dumps(request).encode())
        producer.flush()
        wait_for(lambda: len(responses.ids()) >= len(space_fans), 60, "the answers", scorer)
        answers = {r["user_id"]: r for r in responses.got}
        assert all(a["source"] in ("profile", "model") and a["model_version"] == 1 for a in answers.values())
        # 5 space films are left unseen for each of them: the new one joins them in the top 10
        hits = [user for user, a in answers.items() if NEW_ITEM in a["items"]]
        assert len(hits) == len(space_fans), {u: a["items"] for u, a in answers.items()}
    finally:
        if responses is not None:
            responses.close()
        producer.close()
        scorer.stop()
        trainer.stop()
        worker.stop()
