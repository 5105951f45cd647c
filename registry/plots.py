"""The PNG plots a round logs with its run: the training-loss curve and accuracy per registered version.

Headless matplotlib, files written into a given directory. It must never talk to MLflow:
`registry.tracking` logs the files it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots are written as PNG artifacts only

import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_series", "loss_plot", "accuracy_plot", "accuracy_rows"]


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


def loss_plot(epoch_metrics: Mapping[str, Sequence[float]], directory: Path) -> Path | None:
    """`loss_curve.png` of the round's per-epoch loss, or None without a loss series."""
    if not epoch_metrics.get("loss"):
        return None
    return plot_series({"loss": epoch_metrics["loss"]}, "training loss", "epoch", directory / "loss_curve.png")


def accuracy_rows(history: Sequence[Mapping[str, Any]], report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Earlier versions' accuracy followed by this round's (`version` = "this"), rows without numbers left out."""
    rows = [*history, {"version": "this", "hr@10": report.get("hr@10"), "ndcg@10": report.get("ndcg@10")}]
    return [r for r in rows if r.get("hr@10") is not None and r.get("ndcg@10") is not None]


def accuracy_plot(history: Sequence[Mapping[str, Any]], report: Mapping[str, Any], directory: Path) -> Path | None:
    """`metric_history.png`: HR@10 and NDCG@10 per registered version and this round, or None without any."""
    rows = accuracy_rows(history, report)
    if not rows:
        return None
    return plot_series(
        {"HR@10": [float(r["hr@10"]) for r in rows], "NDCG@10": [float(r["ndcg@10"]) for r in rows]},
        "accuracy per registered version",
        "version",
        directory / "metric_history.png",
        x=[str(r["version"]) for r in rows],
    )
