"""MLflow for the hardening game: one run, every round's figures as metrics (step = round), plots as artifacts."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import mlflow

from streams.adversary.plots import game_plot, training_plot

__all__ = ["GameRun", "EXPERIMENT", "artifact_location"]

EXPERIMENT = "advrec-adversary"


class GameRun:
    """A context manager around one MLflow run of the game; `round(figures)` logs one round and redraws the plot."""

    def __init__(self, tracking_uri: str, params: Mapping[str, object], run_name: str = "hardening-game"):
        self.tracking_uri, self.params, self.run_name = tracking_uri, dict(params), run_name
        self.curves: list[dict] = []
        self._dir = Path(tempfile.mkdtemp(prefix="advrec-game-"))

    def __enter__(self) -> GameRun:
        mlflow.set_tracking_uri(self.tracking_uri)
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location(self.tracking_uri))
        mlflow.set_experiment(EXPERIMENT)
        self.run = mlflow.start_run(run_name=self.run_name)
        mlflow.log_params({k: str(v)[:500] for k, v in self.params.items()})
        return self

    def __exit__(self, *exc) -> None:
        mlflow.end_run("FAILED" if exc[0] is not None else "FINISHED")

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    def round(self, figures: Mapping[str, object]) -> None:
        """Log one round's numeric figures (step = round) and the game plot of every round so far."""
        self.curves.append(dict(figures))
        step = int(figures["round"])
        mlflow.log_metrics(
            {f"game/{k}": float(v) for k, v in figures.items() if _finite(v) and k != "round"}, step=step
        )
        mlflow.log_artifact(str(game_plot(self.curves, self._dir / "game.png")), "plots")

    def training(self, history: Sequence[Mapping[str, object]]) -> None:
        """The generator's training curve (step = generator step) and its plot."""
        for h in history:
            mlflow.log_metrics({f"generator/{k}": float(v) for k, v in h.items() if _finite(v)}, step=int(h["step"]))
        mlflow.log_artifact(str(training_plot(history, self._dir / "generator_training.png")), "plots")

    def summary(self, result: Mapping[str, object]) -> None:
        """The final JSON (as an artifact) and its top-level figures."""
        mlflow.log_dict(dict(result), "eval_attack.json")


def artifact_location(tracking_uri: str) -> str | None:
    """Artifacts beside a sqlite store (`mlartifacts/`, the registry's convention), never in the working directory."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri()
    return None


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
