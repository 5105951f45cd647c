"""Logging one training round as an MLflow run: params, per-epoch metrics, report, lineage, plots, model.

The flattening and parameter helpers are pure; `log_round` is the adapter that talks to the
tracking store of the current tracking URI (`RegistryStore.use` sets it). It must never register
versions or move aliases: that is `registry.versions` and `registry.aliases`.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from registry.plots import accuracy_plot, loss_plot
from registry.pyfunc import log_pyfunc

__all__ = [
    "metric_name",
    "flatten_metrics",
    "flatten_params",
    "round_params",
    "text_params",
    "epoch_series",
    "accuracy_history",
    "default_artifact_location",
    "get_or_create_experiment",
    "log_round",
]

_BAD = re.compile(r"[^\w.\-/ :]")


def metric_name(key: str) -> str:
    """An MLflow-safe metric name: `hr@10` → `hr_at_10`."""
    return _BAD.sub("_", key.replace("@", "_at_"))


def flatten_metrics(report: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Every finite number of a nested report, as `a_b_c` → value (`fgsm_0.25_ndcg_at_10`)."""
    out: dict[str, float] = {}
    for key, value in report.items():
        name = metric_name(f"{prefix}{key}")
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, f"{name}_"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested parameters as `a.b` → text (MLflow params are strings, at most 6000 chars)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
        else:
            out[name] = (value if isinstance(value, str) else json.dumps(value, default=str))[:6000]
    return out


def text_params(loaded: Any) -> dict[str, Any]:
    """Which text encoder made the model's item vectors (`text.encoder` = "none" for an ID-only model)."""
    meta = getattr(loaded, "text_encoder", None) or {}
    if not meta:
        return {"text.encoder": "none"}
    return {
        "text.encoder": meta.get("name", ""),
        "text.encoder_version": meta.get("version", ""),
        "text.dim": meta.get("dim", 0),
        "text.fields": ",".join(meta.get("fields") or ()),
        "text.format": meta.get("text_format", ""),
    }


def round_params(loaded: Any, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's params: the loaded model's kind, sizes, rounds, config and text encoder, then the caller's params."""
    return {
        "kind": loaded.kind,
        "n_users": len(loaded.users),
        "n_items": len(loaded.items),
        "rounds": loaded.rounds,
        **(asdict(loaded.config) if is_dataclass(loaded.config) else {}),
        **text_params(loaded),
        **(params or {}),
    }


def epoch_series(model: Any) -> dict[str, list[float]]:
    """A trained model's per-epoch series (`loss`, `epoch_seconds`), empty lists if it has none."""
    return {
        "loss": list(getattr(model, "losses", []) or []),
        "epoch_seconds": list(getattr(model, "epoch_seconds", []) or []),
    }


def accuracy_history(rows: Sequence[Mapping[str, Any]], last: int = 20) -> list[dict[str, Any]]:
    """The accuracy of the newest `last` versions (rows newest first, as listed), oldest first."""
    return [{"version": r["version"], "hr@10": r["hr@10"], "ndcg@10": r["ndcg@10"]} for r in reversed(rows[:last])]


def default_artifact_location(tracking_uri: str) -> str | None:
    """Where a sqlite store keeps artifacts: `mlartifacts/` beside the database file; None for servers."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri()
    return None


def get_or_create_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The id of the named experiment, created (with that artifact location) if it does not exist."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


def log_round(
    experiment_id: str,
    model_file: Path,
    report: Mapping[str, Any],
    params: Mapping[str, Any],
    lineage: Mapping[str, Any],
    epoch_metrics: Mapping[str, Sequence[float]],
    history: Sequence[Mapping[str, Any]],
    workdir: Path,
    run_name: str | None = None,
) -> tuple[str, str]:
    """Log a round (run + pyfunc model) and return (run_id, model_uri)."""
    client = mlflow.MlflowClient()
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        # Per-epoch series live under `epoch/…` so they never collide with the report's metrics.
        steps = [
            Metric(f"epoch/{metric_name(k)}", float(v), now, step)
            for k, values in epoch_metrics.items()
            for step, v in enumerate(values)
            if math.isfinite(float(v))
        ]
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in flatten_metrics(report).items()] + steps,
            params=[Param(k, v) for k, v in flatten_params(params).items()],
        )
        mlflow.set_tags(
            {
                "advrec.kind": str(params.get("kind", "")),
                "advrec.text_encoder": "/".join(
                    str(params[k]) for k in ("text.encoder", "text.encoder_version") if k in params
                ),
                **{f"lineage.{k}": json.dumps(v, default=str)[:5000] for k, v in lineage.items()},
            }
        )
        mlflow.log_dict(dict(report), "report.json")
        mlflow.log_dict(dict(lineage), "lineage.json")
        plots = workdir / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        for plot in (loss_plot(epoch_metrics, plots), accuracy_plot(history, report, plots)):
            if plot is not None:
                mlflow.log_artifact(str(plot), "plots")
        info = log_pyfunc(model_file, name="model")
    return run_id, info.model_uri
