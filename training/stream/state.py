"""What survives a trainer restart, and the directory that holds it consistently across a kill -9.

`StateStore.save` writes round n's files under temporary names, fsyncs and renames them, then
`state.json` naming them, then deletes older files: a kill at any moment leaves the previous or the
new state whole. File I/O only: it must never import Kafka or MLflow, nor save half a round.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from streams.contract.windows import fsync_path
from training.models import Recommender, load_recommender
from training.stream.cleaning import empty_interactions
from training.stream.offsets import OffsetRanges

__all__ = ["STATE_FORMAT", "TrainerState", "StateStore"]

STATE_FORMAT = "advrec.trainer/1"


@dataclass
class TrainerState:
    """What survives a restart: the model (the accepted base), replay buffer, held-out pairs, rows waiting
    for trust, trained offsets, round count, the champion version the model is, who is distrusted, the
    latest red-team probe, the oldest arrival not yet in an accepted model."""

    model: Recommender | None = None
    history: pd.DataFrame = field(default_factory=empty_interactions)
    carry: pd.DataFrame = field(default_factory=empty_interactions)
    waiting: pd.DataFrame = field(default_factory=empty_interactions)  # untrusted accounts' rows (trust gate)
    trained: OffsetRanges = field(default_factory=OffsetRanges)
    round: int = 0
    recent_batches: list[str] = field(default_factory=list)
    base_version: int | None = None  # the registered version the model is (the champion it continues from)
    distrusted: set[str] = field(default_factory=set)  # users ever flagged or written as suspect
    probe: dict = field(default_factory=dict)  # the latest red-team probe's result, with its round
    base_probe_lift: float | None = None  # the probe's lift when the base model was accepted (its recipe's)
    pending_arrival: float | None = None  # oldest Kafka arrival of rows trained since the last accepted model
    refit: bool = False  # the gate rejected the last challenger: the next one is fitted fresh (trainer.py)


class StateStore:
    """A directory holding one consistent TrainerState: files of round n, then `state.json` naming them."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)

    def _publish(self, name: str, write: Callable[[Path], None]) -> None:
        tmp = self.dir / f"{name}.tmp"
        write(tmp)
        fsync_path(tmp)
        os.replace(tmp, self.dir / name)

    def save(self, state: TrainerState) -> None:
        """Write the state so that a kill at any moment leaves the previous or the new one, whole."""
        self.dir.mkdir(parents=True, exist_ok=True)
        n = f"{state.round:06d}"
        names = {
            "model": f"model-{n}.pt" if state.model is not None else None,
            "history": f"history-{n}.parquet",
            "carry": f"carry-{n}.parquet",
            "waiting": f"waiting-{n}.parquet",
        }
        if state.model is not None:
            self._publish(names["model"], state.model.save)
        self._publish(names["history"], lambda p: state.history.to_parquet(p, index=False))
        self._publish(names["carry"], lambda p: state.carry.to_parquet(p, index=False))
        self._publish(names["waiting"], lambda p: state.waiting.to_parquet(p, index=False))
        doc = {
            "format": STATE_FORMAT,
            "round": state.round,
            **names,
            "trained": state.trained.to_dict(),
            "recent_batches": state.recent_batches,
            "base_version": state.base_version,
            "distrusted": sorted(state.distrusted),
            "probe": state.probe,
            "base_probe_lift": state.base_probe_lift,
            "pending_arrival": state.pending_arrival,
            "refit": state.refit,
        }
        self._publish("state.json", lambda p: p.write_text(json.dumps(doc)))
        fsync_path(self.dir)
        keep = set(names.values()) | {"state.json"}
        for path in self.dir.iterdir():  # files of older rounds, and of a round killed mid-save
            if path.name not in keep and path.name.startswith(
                ("model-", "history-", "carry-", "waiting-", "state.json.")
            ):
                path.unlink(missing_ok=True)

    def load(self) -> TrainerState | None:
        """The last saved state, or None if there is none."""
        path = self.dir / "state.json"
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        if doc.get("format") != STATE_FORMAT:
            raise ValueError(f"{path}: not an {STATE_FORMAT} file")
        model = load_recommender(self.dir / doc["model"]) if doc.get("model") else None
        return TrainerState(
            model=model,
            history=pd.read_parquet(self.dir / doc["history"]),
            carry=pd.read_parquet(self.dir / doc["carry"]),
            waiting=pd.read_parquet(self.dir / doc["waiting"]) if doc.get("waiting") else empty_interactions(),
            trained=OffsetRanges(doc["trained"]),
            round=int(doc["round"]),
            recent_batches=list(doc["recent_batches"]),
            base_version=doc.get("base_version"),
            distrusted=set(doc.get("distrusted", ())),
            probe=dict(doc.get("probe") or {}),
            base_probe_lift=doc.get("base_probe_lift"),
            pending_arrival=doc.get("pending_arrival"),
            refit=bool(doc.get("refit", False)),
        )
