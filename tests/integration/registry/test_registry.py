"""The model registry against a real MLflow sqlite store and a real `mlflow server` on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from registry.errors import CorruptModelError, RegistryError, RegistryUnavailable
from registry.model_registry import ModelRegistry
from registry.promotion import GateConfig
from registry.pyfunc import log_pyfunc
from streams.local.broker import free_port
from tests.integration.conftest import mlflow_server_process
from training.models import BPRRecommender

pytestmark = pytest.mark.integration

GATE = GateConfig(min_hr_at_10=0.05, min_ndcg_at_10=0.02, min_eval_users=10)


def _interactions(seed: int, n_users: int = 40, n_items: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"user": rng.integers(0, n_users, 1500).astype(str), "item": rng.integers(0, n_items, 1500).astype(str)}
    )


@pytest.fixture(scope="module")
def models() -> list[BPRRecommender]:
    """Three small trained models (they differ by seed)."""
    torch.set_num_threads(1)
    return [BPRRecommender(dim=8, epochs=2, seed=s).fit(_interactions(s)) for s in range(3)]


def _report(hr: float, ndcg: float, drop: float = 0.1, users: int = 50, champion: tuple | None = None) -> dict:
    """A round's report; `champion` = (version, hr, ndcg): the champion measured on the same set."""
    report = {
        "hr@10": hr,
        "ndcg@10": ndcg,
        "eval_users": users,
        "fgsm": {"0.25": {"hr@10": hr * (1 - drop), "ndcg@10": ndcg * (1 - drop)}},
        "poisoning": {"lift": 0.01},
        "popularity": {"hr@10": hr / 2, "ndcg@10": ndcg / 2},
        "exposure": {"k": 10, "users": 30, "items": [{"item": "3", "challenger": 0.2, "champion": 0.1, "carried": 0}]},
    }
    if champion is not None:
        version, old_hr, old_ndcg = champion
        report["champion"] = {**_report(old_hr, old_ndcg), "version": version}
    return report


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` (sqlite backend, proxied local artifacts) in its own process group."""
    with mlflow_server_process(tmp_path_factory.mktemp("mlflow-server")) as (url, _stop):
        yield url


@pytest.fixture(params=["sqlite", "server"])
def store(request, tmp_path) -> str:
    """A tracking URI: a fresh sqlite file, or the loopback server (a fresh model name per test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlflow.db'}"
    return request.getfixturevalue("mlflow_server")


def test_register_gate_promote_rollback_and_load_by_alias(store, models, tmp_path):
    updates: list[dict] = []
    name = f"advrec-test-{tmp_path.name}"[:60]
    registry = ModelRegistry(
        store, name, GATE, cache_dir=tmp_path / "cache", notify=updates.append, retries=2, backoff_s=0.1
    )
    lineage = {
        "batch_files": ["w-0001.parquet", "w-0002.parquet"],
        "kafka_offsets": {"events": {"0": [0, 99]}},
        "detector_version": "robust-z/1",
        "trainer_config": {"kind": "bpr", "dim": 8},
    }

    v1, d1 = registry.register_round(models[0], _report(0.50, 0.30), lineage)
    assert (v1, d1.action) == (1, "promote") and registry.champion_version() == 1
    v2, d2 = registry.register_round(
        models[1], _report(0.40, 0.20, champion=(1, 0.50, 0.30)), {"batch_files": ["w-0003.parquet"]}
    )
    assert d2.action == "reject" and d2.reasons[0].startswith("worse_than_champion")
    assert {r["version"]: r["aliases"] for r in registry.list_versions()} == {1: ["champion"], 2: ["challenger"]}
    v3, d3 = registry.register_round(
        models[2], _report(0.52, 0.31, champion=(1, 0.51, 0.30)), {"batch_files": ["w-0004.parquet"]}
    )
    assert (v2, v3, d3.action) == (2, 3, "promote")

    rows = {r["version"]: r for r in registry.list_versions()}
    assert rows[3]["aliases"] == ["champion"] and rows[2]["aliases"] == [] and rows[1]["aliases"] == []
    assert [rows[v]["decision"] for v in (1, 2, 3)] == ["promote", "reject", "promote"]
    assert rows[2]["hr@10"] == pytest.approx(0.40) and rows[3]["ndcg@10"] == pytest.approx(0.31)
    # Both models' numbers on the same set, and the champion faced, are on the version.
    faced = mlflow.MlflowClient(store, store).get_model_version(name, "2").tags
    assert (faced["gate.champion_version"], faced["gate.champion_hr_at_10"], faced["gate.challenger_hr_at_10"]) == (
        "1",
        "0.5",
        "0.4",
    )

    client = mlflow.MlflowClient(store, store)
    tags = client.get_model_version(name, "1").tags
    assert json.loads(tags["lineage.batch_files"]) == ["w-0001.parquet", "w-0002.parquet"]
    assert json.loads(tags["lineage.kafka_offsets"]) == {"events": {"0": [0, 99]}}
    assert tags["lineage.detector_version"] == '"robust-z/1"' and tags["decision"] == "promote"
    run = client.get_run(tags["run_id"])
    assert run.data.metrics["hr_at_10"] == pytest.approx(0.50)
    assert run.data.params["dim"] == "8"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.json", "lineage.json", "plots"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/loss_curve.png",
        "plots/metric_history.png",
    }
    assert len(client.get_metric_history(run.info.run_id, "epoch/loss")) == 2

    # Load by alias: the champion's file gives the same recommendations as the model that was logged.
    version, path = registry.champion()
    assert version == 3
    loaded = registry.load_version(version)
    cached = tmp_path / "cache" / name / str(version)  # only the model file, not the pyfunc's code
    assert sorted(p.relative_to(cached).as_posix() for p in cached.rglob("*") if p.is_file()) == [
        ".complete",
        f"artifacts/{path.name}",
    ]
    users = ["1", "2", "nobody"]
    assert (loaded.recommend(users, k=5)[0] == models[2].recommend(users, k=5)[0]).all()
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion") if store.startswith("http") else None
    if pyfunc is not None:
        out = pyfunc.predict(pd.DataFrame({"user_id": ["1", "2"], "k": [3, 4]}))
        assert [len(x) for x in out["items"]] == [3, 4]
        assert list(out["items"][0]) == [str(x) for x in models[2].recommend(["1"], k=3)[0][0]]

    assert registry.rollback() == 1 and registry.champion_version() == 1
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback()
    registry.promote(2)
    assert registry.champion_version() == 2
    assert client.get_model_version(name, "2").tags["decision_reasons"] == "manual promotion"
    assert [(u["version"], u["action"]) for u in updates] == [
        (1, "promote"),
        (3, "promote"),
        (1, "rollback"),
        (2, "promote"),
    ]
    assert all(u["alias"] == "champion" and u["model_name"] == name for u in updates)


class _Killed(BaseException):
    """The trainer's process ending right after a call returned (a kill -9 or SIGTERM there)."""


def test_a_round_killed_right_after_registration_leaves_a_whole_decided_version(store, models, tmp_path):
    name = f"advrec-test-{tmp_path.name}"[:60]
    registry = ModelRegistry(store, name, GATE, cache_dir=tmp_path / "cache", retries=2, backoff_s=0.1)
    register = registry.store.register

    def register_then_die(model_uri, tags=None):
        register(model_uri, tags)
        raise _Killed

    registry.store.register = register_then_die
    with pytest.raises(_Killed):
        registry.register_round(models[0], _report(0.50, 0.30), {"batch_files": ["w-0001.parquet"]})

    reader = ModelRegistry(store, name, GATE, cache_dir=tmp_path / "cache2")
    [row] = reader.list_versions()
    tags = reader.version_tags(row["version"])
    assert (row["decision"], tags["gate.challenger_hr_at_10"], row["hr@10"]) == ("promote", "0.5", 0.5)
    assert tags["lineage.batch_files"] == '["w-0001.parquet"]' and tags["advrec_format"] == "advrec.mf/2"
    assert row["aliases"] == [] and reader.champion_version() is None  # decided, the alias not yet moved
    assert reader.load_version(row["version"]).users == models[0].users


def test_corrupt_version_is_refused_and_the_champion_stays(store, models, tmp_path):
    name = f"advrec-corrupt-{tmp_path.name}"[:60]
    registry = ModelRegistry(store, name, GATE, cache_dir=tmp_path / "cache", retries=2, backoff_s=0.1)
    registry.register_round(models[0], _report(0.5, 0.3), {})
    bad = tmp_path / "advrec-model.pt"
    bad.write_bytes(b"definitely not a torch file")
    with pytest.raises(CorruptModelError):
        registry.register_round(bad, _report(0.6, 0.4), {})  # refused before it is registered
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    with mlflow.start_run(experiment_id=registry.experiment_id()):
        info = log_pyfunc(bad, name="model")
    corrupt = int(mlflow.register_model(info.model_uri, name).version)
    with pytest.raises(CorruptModelError, match=f"version {corrupt} .* cannot be loaded"):
        registry.promote(corrupt)
    assert registry.champion_version() == 1


def test_unreachable_mlflow_retries_with_backoff_then_fails_clearly(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    registry = ModelRegistry(dead, "advrec-recommender", retries=3, backoff_s=0.1, cache_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="gave up after 3 attempts and 0.3s of backoff"):
        registry.champion_version()
    assert 0.3 <= time.monotonic() - started < 20


def _predict(uri: str, tmp_path, name: str, body: str, content_type: str) -> list[dict]:
    """`mlflow models predict` on the champion, through MLflow's CLI, with an input file of this body."""
    given = tmp_path / name
    given.write_text(body)
    out = tmp_path / f"{name}.out.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "predict",
            "-m",
            "models:/advrec-recommender@champion",
            "-i",
            str(given),
            "-t",
            content_type,
            "--env-manager",
            "local",
            "-o",
            str(out),
        ],
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())["predictions"]


@pytest.mark.timeout(900)  # three `mlflow models predict` processes, each a minute on a loaded machine
def test_mlflow_models_predict_serves_the_champion_from_csv_and_json_numeric_or_string_ids(models, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = ModelRegistry(uri, "advrec-recommender", GATE, cache_dir=tmp_path / "cache")
    registry.register_round(models[0], _report(0.5, 0.3), {})
    assert registry.champion_version() == 1
    expected = {u: [str(x) for x in models[0].recommend([u], k=5)[0][0]] for u in ("1", "2")}

    numeric = _predict(uri, tmp_path, "numeric.csv", "user_id\n1\n2\n", "csv")  # ids read as int64
    assert [r["user_id"] for r in numeric] == ["1", "2"]
    assert [r["items"][:5] for r in numeric] == [expected["1"], expected["2"]] and len(numeric[0]["items"]) == 10
    assert numeric[0]["scores"] == sorted(numeric[0]["scores"], reverse=True)

    mixed = _predict(uri, tmp_path, "mixed.csv", "user_id,k\n1,3\n2,\nnobody,2\n", "csv")  # a k left empty
    assert [r["user_id"] for r in mixed] == ["1", "2", "nobody"]
    assert [len(r["items"]) for r in mixed] == [3, 10, 2] and mixed[0]["items"] == expected["1"][:3]

    split = json.dumps({"dataframe_split": {"columns": ["user_id", "k"], "data": [[2, 5], ["1", 4]]}})
    assert [r["items"] for r in _predict(uri, tmp_path, "split.json", split, "json")] == [
        expected["2"],
        expected["1"][:4],
    ]
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    in_process = mlflow.pyfunc.load_model("models:/advrec-recommender@champion")  # ints, as pandas has them
    out = in_process.predict(pd.DataFrame({"user_id": [1, 2], "k": [3, 5]}))
    assert list(out["user_id"]) == ["1", "2"] and [list(x) for x in out["items"]] == [expected["1"][:3], expected["2"]]


def test_a_shadow_model_is_registered_and_tagged_but_never_promoted(models, tmp_path):
    updates: list[dict] = []
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    shadow = ModelRegistry(store, "advrec-shadow", GATE, cache_dir=tmp_path / "cache", notify=updates.append,
                           promotion=False)  # fmt: skip
    v1, d1 = shadow.register_round(models[0], _report(0.50, 0.30), {"round": 1})
    v2, d2 = shadow.register_round(models[1], _report(0.60, 0.40), {"round": 2})
    assert (v1, v2) == (1, 2) and d1.action == d2.action == "shadow"
    assert shadow.champion_version() is None and shadow.alias_version("shadow") == 2
    assert updates == []  # nothing announced: no scorer of the served model ever hears of it
    tags = shadow.version_tags(2)
    assert tags["decision"] == "shadow" and tags["lineage.round"] == "2" and float(tags["hr_at_10"]) == 0.6
    assert "never promoted" in tags["decision_reasons"]
    assert shadow.load_version(2).users == models[1].users
