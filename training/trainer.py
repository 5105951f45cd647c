"""The stream trainer's loop: announced window files → clean interactions → warm-start round → report.

`Trainer` takes window batches (`BatchAnnouncement` dicts), drops what must not be trained on
(users flagged now or marked suspect when written, offsets already trained, repeated event ids),
holds out each active user's newest pair for evaluation, runs `train_round` on the current model
with a bounded replay buffer, evaluates it, calls `on_round(model, report, lineage)`, then saves
its state atomically. `run` is the poll loop over any `BatchSource` (Kafka in
`training.sources`, a list in tests). Kafka, Prometheus and MLflow are injected, never imported
here; this module must never let a source commit a batch before the round that took it is saved.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from streams.contract.windows import fsync_path
from training.evaluation import FGSM_EPS, Split, evaluate, leave_last_out, rank_metrics, robustness, sampled_ranks
from training.models import BPRRecommender, PopularityRecommender, build_model, load_recommender

__all__ = [
    "TrainerConfig",
    "Batch",
    "OffsetRanges",
    "Quarantine",
    "TrainerState",
    "StateStore",
    "Trainer",
    "RoundResult",
    "BatchSource",
    "MemorySource",
    "TrainerMetrics",
    "events_to_interactions",
    "clean_events",
    "save_round_files",
    "run",
    "INTERACTION_COLUMNS",
]

log = logging.getLogger(__name__)

INTERACTION_COLUMNS = ["event_id", "user", "item", "rating", "timestamp"]
STATE_FORMAT = "advrec.trainer/1"


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


@dataclass(frozen=True)
class Batch:
    """An announcement as taken from a source, with its own position there (for the commit)."""

    announcement: Mapping[str, Any]
    topic: str = ""
    partition: int = 0
    offset: int = 0


class OffsetRanges:
    """Source offsets already trained on, per "topic/partition", as merged closed intervals."""

    def __init__(self, ranges: Mapping[str, Iterable[Iterable[int]]] | None = None) -> None:
        self._ranges: dict[str, list[list[int]]] = {}
        for key, spans in (ranges or {}).items():
            for first, last in spans:
                self.add(key, first, last)

    def add(self, key: str, first: int, last: int) -> None:
        """Mark [first, last] as trained."""
        spans = sorted(self._ranges.get(key, []) + [[int(first), int(last)]])
        merged: list[list[int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self._ranges[key] = merged

    def covers(self, key: str, first: int, last: int) -> bool:
        """Whether every offset of [first, last] is trained."""
        return any(lo <= first and last <= hi for lo, hi in self._ranges.get(key, []))

    def contains(self, key: str, offsets: np.ndarray) -> np.ndarray:
        """Boolean mask: is each offset trained."""
        offsets = np.asarray(offsets, dtype=np.int64)
        mask = np.zeros(len(offsets), bool)
        for lo, hi in self._ranges.get(key, []):
            mask |= (offsets >= lo) & (offsets <= hi)
        return mask

    def to_dict(self) -> dict[str, list[list[int]]]:
        """Plain data to persist."""
        return {k: [list(s) for s in v] for k, v in self._ranges.items()}


@dataclass
class Quarantine:
    """Users flagged now, from the `fraud.flags` records seen so far (flagged=False clears)."""

    flagged: set[str] = field(default_factory=set)
    detector_version: str | None = None

    def update(self, flag: Mapping[str, Any] | None, key: str | None = None) -> None:
        """Apply one flag record; a record without a value (tombstone) clears its key's user."""
        user = str((flag or {}).get("user_id") or key or "")
        if not user:
            return
        if flag and flag.get("flagged"):
            self.flagged.add(user)
        else:
            self.flagged.discard(user)
        if flag and flag.get("detector_version") is not None:
            self.detector_version = str(flag["detector_version"])


def events_to_interactions(events: pd.DataFrame) -> pd.DataFrame:
    """Window rows → interactions: a rating keeps its value; a click or purchase is an implicit positive (NaN)."""
    return pd.DataFrame(
        {
            "event_id": events["event_id"].astype(str).to_numpy(),
            "user": events["user_id"].astype(str).to_numpy(),
            "item": events["item_id"].astype(str).to_numpy(),
            "rating": np.where(events["type"].to_numpy() == "rating", events["value"].astype(float).to_numpy(), np.nan),
            "timestamp": events["ts"].astype(float).to_numpy(),
        }
    )


def clean_events(
    events: pd.DataFrame, flagged: set[str], trained: OffsetRanges, known_event_ids: Iterable[str] = ()
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop suspect or flagged users' events, offsets already trained, and repeated event ids; count each."""
    counts = {"rows": len(events)}
    suspect = events["suspect"].fillna(False).astype(bool).to_numpy()
    flagged_now = events["user_id"].astype(str).isin(flagged).to_numpy()
    done = np.zeros(len(events), bool)
    for (topic, partition), idx in events.groupby(["topic", "partition"]).indices.items():
        done[idx] = trained.contains(f"{topic}/{partition}", events["offset"].to_numpy()[idx])
    counts["dropped_suspect"] = int(suspect.sum())
    counts["dropped_flagged"] = int((flagged_now & ~suspect).sum())
    counts["dropped_trained"] = int((done & ~suspect & ~flagged_now).sum())
    kept = events[~(suspect | flagged_now | done)]
    unique = kept.drop_duplicates("event_id", keep="first")
    unique = unique[~unique["event_id"].isin(set(known_event_ids))]
    counts["dropped_duplicate"] = len(kept) - len(unique)
    counts["kept"] = len(unique)
    return unique.reset_index(drop=True), counts


def _pair_keys(frame: pd.DataFrame) -> pd.Series:
    return frame["user"].astype(str) + "\x00" + frame["item"].astype(str)


def _empty_interactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": pd.Series(dtype=str),
            "user": pd.Series(dtype=str),
            "item": pd.Series(dtype=str),
            "rating": pd.Series(dtype=float),
            "timestamp": pd.Series(dtype=float),
        }
    )


@dataclass
class TrainerState:
    """What survives a restart: the model, replay buffer, held-out pairs, trained offsets, round count."""

    model: BPRRecommender | None = None
    history: pd.DataFrame = field(default_factory=_empty_interactions)
    carry: pd.DataFrame = field(default_factory=_empty_interactions)
    trained: OffsetRanges = field(default_factory=OffsetRanges)
    round: int = 0
    recent_batches: list[str] = field(default_factory=list)


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
        }
        if state.model is not None:
            self._publish(names["model"], state.model.save)
        self._publish(names["history"], lambda p: state.history.to_parquet(p, index=False))
        self._publish(names["carry"], lambda p: state.carry.to_parquet(p, index=False))
        doc = {
            "format": STATE_FORMAT,
            "round": state.round,
            **names,
            "trained": state.trained.to_dict(),
            "recent_batches": state.recent_batches,
        }
        self._publish("state.json", lambda p: p.write_text(json.dumps(doc)))
        fsync_path(self.dir)
        keep = set(names.values()) | {"state.json"}
        for path in self.dir.iterdir():  # files of older rounds, and of a round killed mid-save
            if path.name not in keep and path.name.startswith(("model-", "history-", "carry-", "state.json.")):
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
            trained=OffsetRanges(doc["trained"]),
            round=int(doc["round"]),
            recent_batches=list(doc["recent_batches"]),
        )


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
    """Where the loop reports what it did; the trainer process plugs Prometheus in (training.metrics)."""

    def round_done(self, result: RoundResult) -> None:
        """A round finished (either outcome)."""

    def batches_consumed(self, n: int) -> None:
        """n batches were taken into a round (or consumed without one)."""

    def pending(self, n: int) -> None:
        """Batches written but not yet consumed."""


OnRound = Callable[[BPRRecommender, dict, dict], None]


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

    def _split(self, model: BPRRecommender, history: pd.DataFrame, new: pd.DataFrame) -> Split:
        """Leave-last-out on everything kept; test only users whose newest pair is new and untrained."""
        cfg = self.config
        accumulated = pd.concat([history, self.state.carry, new], ignore_index=True)
        split = leave_last_out(accumulated, n_negatives=cfg.negatives, seed=cfg.seed * 7919 + self.state.round)
        test = split.test
        fresh = _pair_keys(test).isin(set(_pair_keys(new))).to_numpy()
        u, i = model.users.lookup(test["user"]), model.items.lookup(test["item"])
        known = (u >= 0) & (i >= 0)
        trained = np.zeros(len(test), bool)
        trained[known] = model.seen.contains(u[known], i[known])
        keep = np.flatnonzero(fresh & ~trained)
        if len(keep) > cfg.eval_users:
            keep = np.sort(
                np.random.default_rng([cfg.seed, self.state.round]).choice(keep, cfg.eval_users, replace=False)
            )
        return Split(split.train, test.iloc[keep].reset_index(drop=True), split.negatives[keep])

    def _report(self, model: BPRRecommender, split: Split) -> dict:
        report = evaluate(model, split)
        report["fgsm"] = robustness(model, split, eps=tuple(self.config.fgsm_eps), seed=self.config.seed)
        popularity = PopularityRecommender().fit(split.train)
        hr, ndcg = rank_metrics(sampled_ranks(popularity, split), 10)
        report["popularity"] = {"hr@10": hr, "ndcg@10": ndcg}
        report["test_users"] = len(split.test)
        return report

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
        flagged = set(quarantine.flagged)
        events, counts = clean_events(self._read(batches), flagged, state.trained, state.history["event_id"])
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
        split = self._split(model, history, new)
        held = set(_pair_keys(split.test))
        carry = state.carry[~_pair_keys(state.carry).isin(held)]
        train_new = pd.concat([new[~_pair_keys(new).isin(held)], carry], ignore_index=True)
        replay = history[~_pair_keys(history).isin(held)]
        train_started = time.perf_counter()
        stats = model.train_round(train_new, replay, quarantined_users=flagged, epochs=epochs)
        train_seconds = time.perf_counter() - train_started
        state.model = model
        state.round += 1
        samples = int(stats["events"] - stats["dropped_quarantined"] + stats["replayed"])

        lineage = {
            "round": state.round,
            "batches": [dict(b.announcement) for b in batches],
            "offset_ranges": {
                f"{b.announcement['topic']}/{b.announcement['partition']}": [
                    b.announcement["first_offset"],
                    b.announcement["last_offset"],
                ]
                for b in batches
            },
            "detector_version": quarantine.detector_version,
            "quarantined_users": len(flagged),
            "trainer_config": {**asdict(cfg), "fgsm_eps": list(cfg.fgsm_eps)},
            "model_kind": model.kind,
            "model_config": asdict(model.config),
            "init_model": self.init_model,
        }
        outcome, report = "failure", {}
        if len(split.test):
            report = self._report(model, split)
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
        return RoundResult(
            outcome,
            state.round,
            report["seconds"],
            samples if outcome == "success" else 0,
            len(batches),
            report,
            lineage,
        )

    def take_handled(self) -> list[Batch]:
        """Batches whose effect is saved (trained or skipped), for the source to commit; clears the list."""
        handled, self.handled = self.handled, []
        return handled


class BatchSource(Protocol):
    """Where announcements and fraud flags come from (Kafka in the trainer process)."""

    def poll(self, timeout_s: float) -> tuple[list[Batch], list[tuple[str | None, dict | None]]]: ...

    def commit(self, batches: list[Batch]) -> None: ...

    def backlog(self) -> int: ...


class MemorySource:
    """A BatchSource over lists, for tests: hands out `per_poll` batches (and every flag) a poll, records commits."""

    def __init__(
        self,
        batches: Iterable[Batch] = (),
        flags: Iterable[tuple[str | None, dict | None]] = (),
        per_poll: int | None = None,
    ) -> None:
        self.batches, self.flags, self.per_poll = list(batches), list(flags), per_poll
        self.committed: list[Batch] = []

    def poll(self, timeout_s: float) -> tuple[list[Batch], list[tuple[str | None, dict | None]]]:
        """The next batches and every flag not handed out yet."""
        n = len(self.batches) if self.per_poll is None else self.per_poll
        batches, self.batches = self.batches[:n], self.batches[n:]
        flags, self.flags = self.flags, []
        return batches, flags

    def commit(self, batches: list[Batch]) -> None:
        """Remember what was committed."""
        self.committed.extend(batches)

    def backlog(self) -> int:
        """Batches not polled yet."""
        return len(self.batches)


def save_round_files(models_dir: str | Path) -> OnRound:
    """The default on_round: write round-{n}.pt and round-{n}.json (report and lineage) under models_dir."""
    directory = Path(models_dir)

    def on_round(model: BPRRecommender, report: dict, lineage: dict) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        n = report["round"]
        tmp = directory / f"round-{n}.pt.tmp"
        model.save(tmp)
        os.replace(tmp, directory / f"round-{n}.pt")
        (directory / f"round-{n}.json").write_text(
            json.dumps({"report": report, "lineage": lineage}, indent=2, default=str)
        )
        log.info("round %d: %s", n, json.dumps({k: report[k] for k in ("hr@10", "ndcg@10", "test_users")}))

    return on_round


def run(
    trainer: Trainer,
    source: BatchSource,
    quarantine: Quarantine,
    max_rounds: int | None = None,
    idle_timeout: float | None = None,
    poll_s: float = 1.0,
    max_failures: int = 3,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[RoundResult]:
    """Poll, train when enough rows are pending, commit what is saved; stop after max_rounds or when idle."""
    results: list[RoundResult] = []
    last_batch, failures = clock(), 0
    while max_rounds is None or len(results) < max_rounds:
        batches, flags = source.poll(poll_s)
        for key, flag in flags:
            quarantine.update(flag, key)
        for batch in batches:
            trainer.offer(batch)
        if batches:
            last_batch = clock()
        idle = not batches and idle_timeout is not None and clock() - last_batch >= idle_timeout
        trainer.metrics.pending(len(trainer.pending) + source.backlog())
        if trainer.ready(idle):
            try:
                result = trainer.run_round(quarantine)
            except Exception:
                failures += 1
                log.exception("training round failed (%d in a row)", failures)
                if failures >= max_failures:
                    raise
                sleep(min(60.0, 2.0**failures))
                continue
            failures = 0
            if result is not None:
                results.append(result)
        if not trainer.pending and trainer.handled:
            source.commit(trainer.take_handled())  # nothing older is outstanding: commit all handled
        trainer.metrics.pending(len(trainer.pending) + source.backlog())
        if idle and not trainer.pending:
            break
    return results
