"""The pure helpers of round logging: metric/param flattening, run params, epoch series, history."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from registry.tracking import (
    accuracy_history,
    default_artifact_location,
    epoch_series,
    flatten_metrics,
    flatten_params,
    metric_name,
    round_params,
)


def test_flatten_report_into_mlflow_names():
    report = {
        "hr@10": 0.5,
        "fgsm": {"0.25": {"ndcg@10": 0.3}},
        "poisoning": {"lift": 0.01},
        "eps_mode": "relative",
        "ok": True,
        "bad": float("nan"),
    }
    assert flatten_metrics(report) == {"hr_at_10": 0.5, "fgsm_0.25_ndcg_at_10": 0.3, "poisoning_lift": 0.01}
    assert metric_name("recall@20") == "recall_at_20"
    assert flatten_params({"dim": 8, "gate": {"tol": 0.02}, "name": "x"}) == {
        "dim": "8",
        "gate.tol": "0.02",
        "name": "x",
    }


@dataclass
class _Config:
    dim: int = 8
    lr: float = 0.05


def test_round_params_describe_the_loaded_model_then_the_callers_params():
    loaded = SimpleNamespace(kind="bpr", users=["u1", "u2"], items=["i1", "i2", "i3"], rounds=4, config=_Config())
    assert round_params(loaded, {"lr": 0.01, "source": "file"}) == {
        "kind": "bpr",
        "n_users": 2,
        "n_items": 3,
        "rounds": 4,
        "dim": 8,
        "text.encoder": "none",
        "lr": 0.01,  # the caller's value wins
        "source": "file",
    }
    plain = SimpleNamespace(kind="pop", users=[], items=["i1"], rounds=0, config=None)
    assert round_params(plain, None) == {
        "kind": "pop",
        "n_users": 0,
        "n_items": 1,
        "rounds": 0,
        "text.encoder": "none",
    }


def test_round_params_name_the_text_encoder_of_a_hybrid_model():
    meta = {
        "name": "minilm",
        "version": "0.1.2/abc",
        "dim": 1152,
        "fields": ["categories", "year"],
        "text_format": "f/1",
    }
    hybrid = SimpleNamespace(kind="hybrid", users=[], items=[], rounds=1, config=None, text_encoder=meta)
    params = round_params(hybrid, None)
    assert {k: v for k, v in params.items() if k.startswith("text.")} == {
        "text.encoder": "minilm",
        "text.encoder_version": "0.1.2/abc",
        "text.dim": 1152,
        "text.fields": "categories,year",
        "text.format": "f/1",
    }


def test_epoch_series_of_a_model_with_and_without_them():
    trained = SimpleNamespace(losses=[0.7, 0.5], epoch_seconds=[1.5, 1.4])
    assert epoch_series(trained) == {"loss": [0.7, 0.5], "epoch_seconds": [1.5, 1.4]}
    assert epoch_series(SimpleNamespace(losses=None)) == {"loss": [], "epoch_seconds": []}


def test_accuracy_history_is_the_newest_versions_oldest_first():
    rows = [{"version": v, "hr@10": v / 10, "ndcg@10": v / 20, "decision": "x"} for v in (5, 4, 3, 2, 1)]
    assert accuracy_history(rows, last=3) == [
        {"version": 3, "hr@10": 0.3, "ndcg@10": 0.15},
        {"version": 4, "hr@10": 0.4, "ndcg@10": 0.2},
        {"version": 5, "hr@10": 0.5, "ndcg@10": 0.25},
    ]
    assert accuracy_history([]) == []


def test_a_sqlite_store_keeps_artifacts_beside_its_database():
    assert default_artifact_location("sqlite:////srv/advrec/mlflow.db") == Path("/srv/advrec/mlartifacts").as_uri()
    assert default_artifact_location("http://mlflow:5000") is None
