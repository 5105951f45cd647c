"""Logging one training round as an MLflow run: params, per-epoch metrics, report, lineage, plots, model.

The flattening helpers are pure; `log_round` is the adapter that talks to the tracking store of
the current tracking URI (the registry sets it). It must never register versions or move
aliases: that is `registry.service`'s job.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots are written as PNG artifacts only

import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402

from registry.pyfunc import log_pyfunc  # noqa: E402

__all__ = ["metric_name", "flatten_metrics", "flatten_params", "plot_series", "log_round"]

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


def plot_series(
    series: Mapping[str, Sequence[float]], title: str, xlabel: str, path: Path, x: Sequence[Any] | None = None
) -> Path:
    """One PNG line plot of named series (e.g. the loss curve, or HR@10/NDCG@10 per version)."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for name, values in series.items():
        ax.plot(list(x) if x is not None else range(1, len(values) + 1), list(values), marker=".", label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


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
        params_flat = flatten_params(params)
        metrics = flatten_metrics(report)
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
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()] + steps,
            params=[Param(k, v) for k, v in params_flat.items()],
        )
        mlflow.set_tags(
            {
                "advrec.kind": str(params.get("kind", "")),
                **{f"lineage.{k}": json.dumps(v, default=str)[:5000] for k, v in lineage.items()},
            }
        )
        mlflow.log_dict(dict(report), "report.json")
        mlflow.log_dict(dict(lineage), "lineage.json")
        plots = workdir / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        if epoch_metrics.get("loss"):
            mlflow.log_artifact(
                str(plot_series({"loss": epoch_metrics["loss"]}, "training loss", "epoch", plots / "loss_curve.png")),
                "plots",
            )
        rows = [*history, {"version": "this", "hr@10": report.get("hr@10"), "ndcg@10": report.get("ndcg@10")}]
        rows = [r for r in rows if r.get("hr@10") is not None and r.get("ndcg@10") is not None]
        if rows:
            mlflow.log_artifact(
                str(
                    plot_series(
                        {"HR@10": [float(r["hr@10"]) for r in rows], "NDCG@10": [float(r["ndcg@10"]) for r in rows]},
                        "accuracy per registered version",
                        "version",
                        plots / "metric_history.png",
                        x=[str(r["version"]) for r in rows],
                    )
                ),
                "plots",
            )
        info = log_pyfunc(model_file, name="model")
    return run_id, info.model_uri
