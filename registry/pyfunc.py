"""The MLflow pyfunc flavour of an advrec model: a saved model file wrapped as a `PythonModel`.

Input: a table with `user_id` (and optionally `k`, default 10), as MLflow users send it: CSV or JSON,
ids numeric or text (`1`, `1.0` and `"1"` are the same user); output: one row per input row with
`user_id` (as text), `items` (list of item ids, best first) and `scores` (list of floats). The wrapper
ships `training/` and `registry/` as code paths, so `mlflow models predict --env-manager local`
works without advrec installed. It must never train, log or touch the registry.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, Array, ColSpec, Schema

__all__ = ["AdvrecPyfunc", "SIGNATURE", "MODEL_ARTIFACT", "pip_requirements", "code_paths", "log_pyfunc", "DEFAULT_K"]

MODEL_ARTIFACT = "model"  # key of the saved advrec model file among the pyfunc's artifacts
DEFAULT_K = 10
_ROOT = Path(__file__).resolve().parents[1]

# Both inputs are of any type: a CSV of numeric ids is read as int64 (a "string" column refuses
# it), and `k` comes as int64, or float64 when a cell is empty (NaN); `predict` normalises both.
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(AnyType(), "user_id"), ColSpec(AnyType(), "k", required=False)]),
    outputs=Schema(
        [ColSpec("string", "user_id"), ColSpec(Array("string"), "items"), ColSpec(Array("double"), "scores")]
    ),
)


class AdvrecPyfunc(mlflow.pyfunc.PythonModel):
    """Top-K recommendations of a saved advrec model, as an MLflow pyfunc."""

    def load_context(self, context: Any) -> None:
        """Load the advrec model file named by the `model` artifact."""
        from training.models import load_recommender

        self.model = load_recommender(context.artifacts[MODEL_ARTIFACT], device="cpu")

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """One output row per input row: the user's top-k unseen items and their scores."""
        frame = pd.DataFrame(model_input)
        users = [_user_id(u) for u in frame["user_id"].tolist()]
        ks = (
            pd.to_numeric(frame["k"], errors="coerce").fillna(DEFAULT_K).astype(int).clip(lower=1).tolist()
            if "k" in frame
            else [DEFAULT_K] * len(users)
        )
        if not users:
            return pd.DataFrame({"user_id": [], "items": [], "scores": []})
        items, scores = self.model.recommend(users, k=max(ks), exclude_seen=True)
        out_items, out_scores = [], []
        for row, k in enumerate(ks):
            keep = [j for j in range(min(k, items.shape[1])) if items[row, j] is not None]
            out_items.append([str(items[row, j]) for j in keep])
            out_scores.append([float(scores[row, j]) for j in keep])
        return pd.DataFrame({"user_id": users, "items": out_items, "scores": out_scores})


def _user_id(value: Any) -> str:
    """A user id as the model knows it: text; a whole number read from CSV or JSON as 7 or 7.0 is "7"."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def pip_requirements() -> list[str]:
    """Explicit requirements (MLflow's inference of them costs seconds per model)."""
    import torch

    def base(version: str) -> str:
        return version.split("+")[0]

    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={base(torch.__version__)}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
    ]


def code_paths() -> list[str]:
    """The advrec packages the pyfunc needs at load time (not on PyPI, so shipped as code)."""
    return [str(_ROOT / "training"), str(_ROOT / "registry")]


def log_pyfunc(model_file: str | Path, name: str = "model", registered_model_name: str | None = None, **kwargs: Any):
    """Log a saved advrec model file as a pyfunc in the active run; returns MLflow's ModelInfo.

    Two MLflow warnings that say nothing to an advrec user are silenced here, once per round: the
    pickled wrapper is our own code shipped in `code_paths`, and the signature is given in full,
    so an input example (which MLflow would also run through the model) adds nothing.
    """
    with warnings.catch_warnings(), _without(logging.getLogger("mlflow.pyfunc"), _CLOUDPICKLE_NOTICE):
        warnings.filterwarnings("ignore", message=".*input example was not provided", category=UserWarning)
        return _log_model(model_file, name, registered_model_name, **kwargs)


_CLOUDPICKLE_NOTICE = "Passing a Python object as `python_model`"


@contextlib.contextmanager
def _without(logger: logging.Logger, prefix: str):
    """Drop the records of `logger` whose message starts with `prefix`, inside the block."""

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(prefix)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _log_model(model_file: str | Path, name: str, registered_model_name: str | None, **kwargs: Any):
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=AdvrecPyfunc(),
        artifacts={MODEL_ARTIFACT: str(model_file)},
        code_paths=code_paths(),
        pip_requirements=pip_requirements(),
        signature=SIGNATURE,
        registered_model_name=registered_model_name,
        **kwargs,
    )
