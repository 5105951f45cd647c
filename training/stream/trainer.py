"""The stream trainer: accumulate announced window batches, train a warm-started round, report, save.

`Trainer` drops what must not be trained on (`cleaning`), holds out each active user's newest new
pair (`holdout`), runs `train_round` on the current model with a bounded replay buffer, calls
`on_round(model, report, lineage)`, then saves its state atomically (`state`). Its ports are here:
`Batch`, `BatchSource`, `TrainerMetrics`, `RoundResult`. Kafka, Prometheus and MLflow are injected,
never imported; it must never hand a batch back for commit before the round that took it is saved.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from training.evaluation import FGSM_EPS
from training.models import Recommender, build_model, load_recommender
from training.stream.cleaning import INTERACTION_COLUMNS, clean_events, events_to_interactions, pair_keys
from training.stream.holdout import holdout_split, round_report
from training.stream.quarantine import Quarantine
from training.stream.state import StateStore, TrainerState

__all__ = ["TrainerConfig", "Batch", "RoundResult", "TrainerMetrics", "BatchSource", "OnRound", "Trainer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainerConfig:
    """How the stream trainer trains and evaluates a round."""

    model: str = "apr"  # a key of training.models.MODEL_KINDS
    epochs: int = 5  # epochs per round over new window + replay sample
    first_epochs: int = 40  # epochs of a round that starts from scratch (no model yet)
    min_batch_rows: int = 1  # wait for announcements until this many rows are pending
    replay_rows: int = 200_000  # replay buffer cap (newest rows kept)
    eval_users: int = 2_000  # at most this many test users per round (seeded sample)
    negatives: int = 99
    fgsm_eps: tuple[float, ...] = FGSM_EPS
    seed: int = 0
    quarantine: bool = True  # drop suspect and flagged users' events; False: an undefended shadow trainer


@dataclass(frozen=True)
class Batch:
    """An announcement as taken from a source, with its own position there (for the commit)."""

    announcement: Mapping[str, Any]
    topic: str = ""
    partition: int = 0
    offset: int = 0


@dataclass
class RoundResult:
    """What one round did: outcome (success | failure), report, lineage, and counts for metrics."""

    outcome: str
    round: int
    seconds: float
    samples: int = 0
    batches: int = 0
    report: dict = field(default_factory=dict)
    lineage: dict = field(default_factory=dict)


class TrainerMetrics:
    """Where the loop reports what it did; the trainer process plugs Prometheus in (training.stream.metrics)."""

    def round_done(self, result: RoundResult) -> None:
        """A round finished (either outcome)."""

    def batches_consumed(self, n: int) -> None:
        """n batches were taken into a round (or consumed without one)."""

    def pending(self, n: int) -> None:
        """Batches written but not yet consumed."""


class BatchSource(Protocol):
    """Where announcements and fraud flags come from (Kafka in the trainer process)."""

    def poll(self, timeout_s: float) -> tuple[list[Batch], list[tuple[str | None, dict | None]]]: ...

    def commit(self, batches: list[Batch]) -> None: ...

    def backlog(self) -> int: ...


OnRound = Callable[[Recommender, dict, dict], None]


def _lineage(batches: list[Batch], quarantine: Quarantine, config: TrainerConfig, model: Any, **extra: Any) -> dict:
    """Where a round's model came from: batches, offset ranges, flags, configs."""
    return {
        **extra,
        "batches": [dict(b.announcement) for b in batches],
        "offset_ranges": {
            f"{b.announcement['topic']}/{b.announcement['partition']}": [
                b.announcement["first_offset"],
                b.announcement["last_offset"],
            ]
            for b in batches
        },
        "detector_version": quarantine.detector_version,
        "quarantined_users": len(quarantine.flagged),
        "trainer_config": {**asdict(config), "fgsm_eps": list(config.fgsm_eps)},
        "model_kind": model.kind,
        "model_config": asdict(model.config),
    }


class Trainer:
    """Accumulates announced batches and trains a warm-started round on them."""

    def __init__(
        self,
        config: TrainerConfig,
        store: StateStore,
        read_batch: Callable[[str], pd.DataFrame],
        on_round: OnRound | None = None,
        init_model: str | Path | None = None,
        metrics: TrainerMetrics | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.read_batch = read_batch
        self.on_round = on_round or (lambda model, report, lineage: None)
        self.init_model = str(init_model) if init_model else None
        self.metrics = metrics or TrainerMetrics()
        self.pending: list[Batch] = []
        self.handled: list[Batch] = []  # taken into a saved round or skipped: safe to commit
        self.state = self._restore()

    def _restore(self) -> TrainerState:
        state = self.store.load()
        if state is not None:
            return state
        model = load_recommender(self.init_model) if self.init_model else None
        return TrainerState(model=model)

    @property
    def pending_rows(self) -> int:
        """Rows announced by the pending batches."""
        return sum(int(b.announcement["rows"]) for b in self.pending)

    def offer(self, batch: Batch) -> bool:
        """Queue a batch for the next round, unless its whole offset range was trained already."""
        a = batch.announcement
        if self.state.trained.covers(f"{a['topic']}/{a['partition']}", a["first_offset"], a["last_offset"]):
            log.info("skipping %s: already trained", a["path"])
            self.handled.append(batch)
            return False
        self.pending.append(batch)
        return True

    def ready(self, idle: bool = False) -> bool:
        """Whether a round should run now: enough rows pending, or anything pending once idle."""
        return bool(self.pending) and (idle or self.pending_rows >= self.config.min_batch_rows)

    def _read(self, batches: list[Batch]) -> pd.DataFrame:
        frames = []
        for b in batches:
            frame = self.read_batch(b.announcement["uri"])
            frames.append(frame.assign(topic=b.announcement["topic"]))
        return pd.concat(frames, ignore_index=True)

    def run_round(self, quarantine: Quarantine) -> RoundResult | None:
        """Train one round on every pending batch; None if nothing was left to train after cleaning."""
        started = time.perf_counter()
        batches, self.pending = self.pending, []
        try:
            result = self._round(batches, quarantine, started)
        except Exception:
            self.pending = batches + self.pending
            self.state = self._restore()  # the model may be half-trained: back to the saved round
            self.metrics.round_done(RoundResult("failure", self.state.round + 1, time.perf_counter() - started))
            raise
        self.handled.extend(batches)
        self.metrics.batches_consumed(len(batches))
        if result is not None:
            self.metrics.round_done(result)
        return result

    def _round(self, batches: list[Batch], quarantine: Quarantine, started: float) -> RoundResult | None:
        cfg, state = self.config, self.state
        rows = self._read(batches)
        if cfg.quarantine:
            flagged = set(quarantine.flagged)
        else:  # undefended: train on everyone, as if no detector had spoken
            flagged, rows = set(), rows.assign(suspect=False)
        events, counts = clean_events(rows, flagged, state.trained, state.history["event_id"])
        new = events_to_interactions(events)
        for b in batches:
            a = b.announcement
            state.trained.add(f"{a['topic']}/{a['partition']}", a["first_offset"], a["last_offset"])
        state.recent_batches = (state.recent_batches + [b.announcement["path"] for b in batches])[-1000:]
        if new.empty:
            log.warning(
                "round skipped: all %d rows of %d batches were dropped %s", counts["rows"], len(batches), counts
            )
            self.store.save(state)
            return None

        fresh = state.model is None
        model = build_model(cfg.model, seed=cfg.seed) if fresh else state.model
        epochs = cfg.first_epochs if fresh else cfg.epochs
        history = state.history[~state.history["user"].isin(flagged)]
        accumulated = pd.concat([history, state.carry, new], ignore_index=True)
        split = holdout_split(model, accumulated, new, cfg.negatives, cfg.eval_users, cfg.seed, state.round)
        held = set(pair_keys(split.test))
        carry = state.carry[~pair_keys(state.carry).isin(held)]
        train_new = pd.concat([new[~pair_keys(new).isin(held)], carry], ignore_index=True)
        replay = history[~pair_keys(history).isin(held)]
        train_started = time.perf_counter()
        stats = model.train_round(train_new, replay, quarantined_users=flagged, epochs=epochs)
        train_seconds = time.perf_counter() - train_started
        state.model = model
        state.round += 1
        samples = int(stats["events"] - stats["dropped_quarantined"] + stats["replayed"])
        lineage = _lineage(batches, quarantine, cfg, model, round=state.round)
        lineage["init_model"] = self.init_model
        outcome, report = "failure", {}
        if len(split.test):
            report = round_report(model, split, cfg.fgsm_eps, cfg.seed)
            outcome = "success" if all(math.isfinite(report[k]) for k in ("hr@10", "ndcg@10")) else "failure"
        report.update(
            round=state.round,
            model=model.kind,
            device=str(model.device),
            rows=counts,
            train=stats,
            samples=samples,
            train_seconds=train_seconds,
            epochs=epochs,
            epoch_seconds=model.epoch_seconds[-epochs:] if stats["events"] else [],
        )
        # Held-out pairs are trained next round; every kept row joins the replay buffer.
        state.carry = split.test.merge(new, on=["user", "item"]).drop_duplicates(["user", "item"])[INTERACTION_COLUMNS]
        state.history = pd.concat([state.history, new], ignore_index=True).tail(cfg.replay_rows).reset_index(drop=True)
        if outcome == "success":
            self.on_round(model, report, lineage)
        else:
            log.warning("round %d trained but could not be evaluated (%d test users)", state.round, len(split.test))
        self.store.save(state)
        report["seconds"] = time.perf_counter() - started
        success = outcome == "success"
        return RoundResult(
            outcome, state.round, report["seconds"], samples if success else 0, len(batches), report, lineage
        )

    def take_handled(self) -> list[Batch]:
        """Batches whose effect is saved (trained or skipped), for the source to commit; clears the list."""
        handled, self.handled = self.handled, []
        return handled
