"""Window batches and trainers for the stream trainer's tests: a seeded population cut into windows in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from streams.contract.windows import WINDOW_SCHEMA
from tests.unit.conftest import make_ratings
from training.stream.state import StateStore
from training.stream.trainer import Batch, Trainer, TrainerConfig
from training.testing import RecordingMetrics, RecordingRounds, window_batch

__all__ = ["window_rows", "make_windows", "make_trainer", "attack_window"]


def window_rows(*rows) -> pd.DataFrame:
    """Window rows from (event_id, user, item, type, value, offset[, suspect]) tuples, partition 0."""
    out = []
    for n, (event_id, user, item, kind, value, offset, *suspect) in enumerate(rows):
        out.append(
            {
                "event_id": event_id,
                "user_id": user,
                "item_id": item,
                "type": kind,
                "ts": 1_700_000_000.0 + n,
                "value": value,
                "session_id": None,
                "partition": 0,
                "offset": offset,
                "kafka_ts": 1_700_000_100.0 + n,
                "suspect": bool(suspect and suspect[0]),
            }
        )
    return pd.DataFrame(out, columns=WINDOW_SCHEMA.names).assign(topic="events")


def make_windows(
    n_windows: int = 4,
    n_users: int = 120,
    n_items: int = 150,
    seed: int = 5,
    extra: list[tuple] = (),
    start_offset: int = 0,
) -> tuple[list[Batch], dict[str, pd.DataFrame]]:
    """A rating population cut into time-ordered windows of one partition, plus extra (user, item) clicks."""
    df = make_ratings(n_users, n_items, seed=seed).sort_values("timestamp", kind="stable").reset_index(drop=True)
    events = pd.DataFrame(
        {
            "event_id": [f"e{start_offset + n}" for n in range(len(df))],
            "user_id": df["user"],
            "item_id": df["item"],
            "type": "rating",
            "ts": df["timestamp"],
            "value": df["rating"],
            "session_id": None,
            "partition": 0,
            "offset": start_offset + np.arange(len(df)),
            "kafka_ts": df["timestamp"] + 5,
            "suspect": False,
        }
    )
    for n, (user, item, suspect) in enumerate(extra):
        row = {
            **events.iloc[-1].to_dict(),
            "event_id": f"x{start_offset + n}",
            "user_id": user,
            "item_id": item,
            "type": "click",
            "value": None,
            "offset": start_offset + len(events),
            "suspect": suspect,
            "ts": events["ts"].iloc[-1] + n + 1,
        }
        events = pd.concat([events, pd.DataFrame([row])], ignore_index=True)
    files, batches = {}, []
    bounds = np.linspace(0, len(events), n_windows + 1).astype(int)
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        part = events.iloc[lo:hi]
        first, last = int(part["offset"].iloc[0]), int(part["offset"].iloc[-1])
        uri = f"mem://events/p0/{first:020d}-{last:020d}.parquet"
        files[uri] = part.reset_index(drop=True)
        batches.append(window_batch(uri, files[uri], k, path=uri[6:]))
    return batches, files


def make_trainer(tmp_path, files, rounds: RecordingRounds | None = None, **config) -> Trainer:
    """A BPR trainer (20 first epochs, 5 after) on in-memory files, state under tmp_path/state, metrics recorded."""
    cfg = TrainerConfig(**{"model": "bpr", "epochs": 5, "first_epochs": 20, **config})
    return Trainer(
        cfg,
        StateStore(tmp_path / "state"),
        read_batch=files.__getitem__,
        on_round=rounds if rounds is not None else RecordingRounds(),
        metrics=RecordingMetrics(),
    )


def attack_window(files: dict[str, pd.DataFrame], batches: list[Batch], events: list[dict]) -> list[dict]:
    """Append attack events (dicts of the event contract, from `streams.sources.attacks`) to the last window.

    The events get the offsets after the window's last one (its announced range is widened) and
    timestamps clipped to the window's span; returns the rows as written.
    """
    batch = batches[-1]
    a = batch.announcement
    frame = files[a["uri"]]
    first_ts, last_ts = float(frame["ts"].min()), float(frame["ts"].max())
    rows = pd.DataFrame(events).assign(
        ts=lambda f: np.clip(f["ts"].astype(float), first_ts, last_ts),
        partition=0,
        offset=np.arange(len(events)) + a["last_offset"] + 1,
        kafka_ts=last_ts + 5,
        suspect=False,
    )[WINDOW_SCHEMA.names]
    files[a["uri"]] = pd.concat([frame, rows.assign(topic="events")], ignore_index=True)
    a.update(last_offset=int(rows["offset"].iloc[-1]), rows=len(files[a["uri"]]))
    return rows.to_dict("records")
