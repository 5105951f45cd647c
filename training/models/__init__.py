"""The recommenders of advrec and THE table of their kinds: one place that maps a name to a class.

`MODEL_KINDS` is what a kind string means everywhere: the trainer's `--model`, `eval-model`, a
saved file's `"kind"`. `build_model` makes a fresh one with its tuned defaults, `load_recommender`
reads any saved one. Pure core: nothing here may import Kafka, Faust, MLflow or Prometheus, and
nothing may register a kind anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.models.apr import APRConfig, APRRecommender, adversarial_delta
from training.models.base import Recommender, read_model_file
from training.models.hybrid import HybridConfig, HybridRecommender
from training.models.mf import BPRRecommender, MatrixFactorization, MFConfig, bpr_loss, implicit_pairs
from training.models.popularity import PopularityRecommender

__all__ = [
    "MODEL_KINDS",
    "build_model",
    "load_recommender",
    "Recommender",
    "MFConfig",
    "MatrixFactorization",
    "BPRRecommender",
    "APRConfig",
    "APRRecommender",
    "PopularityRecommender",
    "HybridConfig",
    "HybridRecommender",
    "adversarial_delta",
    "bpr_loss",
    "implicit_pairs",
]

MODEL_KINDS: dict[str, type[Recommender]] = {
    "bpr": BPRRecommender,
    "apr": APRRecommender,
    "popularity": PopularityRecommender,
    "hybrid": HybridRecommender,
}


def build_model(kind: str, **overrides: Any) -> Recommender:
    """A fresh, untrained model of the given kind with its tuned defaults changed by `overrides`."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; one of {', '.join(MODEL_KINDS)}")
    return MODEL_KINDS[kind](**overrides)


def load_recommender(path: str | Path, device: str = "") -> Recommender:
    """Load a model saved by any kind's `save`; the file's `"kind"` picks the class."""
    contents = read_model_file(path)
    kind = contents.get("kind")
    if kind not in MODEL_KINDS:
        raise ValueError(f"{path}: unknown model kind {kind!r}")
    return MODEL_KINDS[kind].from_file_contents(contents, path, device)
