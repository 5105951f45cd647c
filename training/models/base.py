"""The vocabulary every advrec recommender speaks: `fit`, `score`, `recommend`, `save`, `load`, `kind`.

Models differ in how they learn and score; ranking (top-k, unseen items only) and the file
envelope (one `torch.save` of plain values and tensors, read back with `weights_only=True`) are
shared here. Pure core: it must never import Kafka, MLflow or a model subclass; the table that maps
a file's `kind` to its class is `training.models.MODEL_KINDS`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch

from training.sampling import PairSet
from training.vocab import Vocabulary

__all__ = ["Recommender", "read_model_file", "ID_LISTS"]


# The vocabularies (id lists): one JSON text each in a file, from format version 2 on. torch's
# weights-only unpickler reads a list of strings at ~2.7 µs an id (a model of 100,000 users: 0.29
# s, which a scorer swapping models spends holding the GIL); one text loads in 5 ms and parses in 10.
ID_LISTS = ("users", "items")


def read_model_file(path: str | Path) -> dict[str, Any]:
    """The plain dict a `Recommender.save` wrote; loads only tensors and plain values (no code).

    The id lists come back as lists, from a file of either version (version 1 stored them so).
    """
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or not str(blob.get("format", "")).startswith("advrec."):
        raise ValueError(f"{path}: not an advrec model file")
    for key in ID_LISTS:
        if isinstance(blob.get(key), str):
            blob[key] = json.loads(blob[key])
    return blob


class Recommender:
    """A recommender over string user and item ids; subclasses implement fit, score and their state."""

    kind: ClassVar[str] = ""
    save_format: ClassVar[str] = ""  # what `save` writes ("advrec.<family>/2")
    read_formats: ClassVar[tuple[str, ...]] = ()  # what `load` reads: this version and the ones before
    uses_item_text: ClassVar[bool] = False  # True: `train_round` takes item_ids / item_vectors / encoder
    users: Vocabulary
    items: Vocabulary
    seen: PairSet  # the (user, item) index pairs it trained on: what `recommend` excludes

    def fit(self, interactions: pd.DataFrame, epochs: int | None = None) -> Self:
        """Learn from scratch from an interaction frame (columns user, item[, rating, timestamp])."""
        raise NotImplementedError

    def score(self, user_ids: list[str] | np.ndarray) -> np.ndarray:
        """Scores of every known item for each user, a new (len(user_ids), n_items) array."""
        raise NotImplementedError

    def recommend(
        self, user_ids: list[str] | np.ndarray, k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item ids and scores per user, (n_users, k) arrays, best first; padded with None / -inf."""
        scores = self.score(user_ids)
        if exclude_seen:
            rows, cols = self.seen.of_users(self.users.lookup(user_ids))
            scores[rows, cols] = -np.inf
        k = min(k, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        items = np.asarray(self.items.ids, dtype=object)[top] if k else np.empty((len(scores), 0), object)
        scores = np.take_along_axis(scores, top, axis=1)
        items[np.isneginf(scores)] = None  # fewer than k unseen items: pad
        return items, scores

    # ---- persistence -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything `from_state` needs, as tensors, lists and numbers."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str = "") -> Self:
        """Rebuild a model from what `state` returned."""
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        """Write the model to one torch file of plain values (no code): format, kind, then its state
        (its id lists as JSON texts)."""
        state = self.state()
        for key in ID_LISTS:
            if key in state:
                state[key] = json.dumps(state[key])
        torch.save({"format": self.save_format, "kind": self.kind, **state}, Path(path))

    @classmethod
    def from_file_contents(cls, blob: dict[str, Any], path: str | Path = "", device: str = "") -> Self:
        """A model of this class from a dict read by `read_model_file`; TypeError if it holds another kind."""
        if blob.get("kind") != cls.kind:
            raise TypeError(
                f"{path} holds a {blob.get('kind')} model, not a {cls.kind} one (load_recommender loads any kind)"
            )
        if blob.get("format") not in cls.read_formats:
            raise ValueError(f"{path}: not an {' or '.join(cls.read_formats)} file")
        return cls.from_state(blob, device)

    @classmethod
    def load(cls, path: str | Path, device: str = "") -> Self:
        """Read a file written by `save` of this very class."""
        return cls.from_file_contents(read_model_file(path), path, device)
