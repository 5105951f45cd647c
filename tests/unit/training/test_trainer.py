"""Stream trainer loop: event → interaction rule, cleaning (quarantine, offsets, dedup), rounds, state resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from streams.contract.windows import WINDOW_SCHEMA
from tests.unit.conftest import make_ratings
from training.models import implicit_pairs
from training.trainer import (
    Batch,
    MemorySource,
    OffsetRanges,
    Quarantine,
    RoundResult,
    StateStore,
    Trainer,
    TrainerConfig,
    TrainerMetrics,
    clean_events,
    events_to_interactions,
    run,
    save_round_files,
)


def _rows(*rows) -> pd.DataFrame:
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


def test_events_to_interactions_ratings_keep_value_clicks_and_purchases_are_implicit_positives():
    events = _rows(
        ("e1", "u", "a", "rating", 2.0, 0), ("e2", "u", "b", "click", None, 1), ("e3", "u", "c", "purchase", 19.9, 2)
    )
    out = events_to_interactions(events)
    assert list(out.columns) == ["event_id", "user", "item", "rating", "timestamp"]
    assert out["rating"].tolist()[0] == 2.0 and np.isnan(out["rating"].tolist()[1:]).all()  # price is not a rating
    assert out["timestamp"].tolist() == [1_700_000_000.0, 1_700_000_001.0, 1_700_000_002.0]
    # A model that trains only on ratings >= 4 still takes clicks and purchases as positives.
    assert implicit_pairs(out, min_rating=4.0)["item"].tolist() == ["b", "c"]


def test_offset_ranges_merge_cover_and_mask():
    ranges = OffsetRanges()
    ranges.add("events/0", 0, 99)
    ranges.add("events/0", 100, 149)
    ranges.add("events/0", 300, 399)
    assert ranges.to_dict() == {"events/0": [[0, 149], [300, 399]]}
    assert ranges.covers("events/0", 10, 149) and not ranges.covers("events/0", 100, 300)
    assert not ranges.covers("events/1", 0, 0)
    assert ranges.contains("events/0", np.array([149, 150, 299, 300])).tolist() == [True, False, False, True]
    assert OffsetRanges(json.loads(json.dumps(ranges.to_dict()))).to_dict() == ranges.to_dict()


def test_quarantine_follows_flags_and_clears():
    q = Quarantine()
    q.update(
        {"user_id": "u1", "score": 0.9, "reasons": ["burst"], "ts": 1.0, "detector_version": "d1", "flagged": True}
    )
    q.update({"user_id": "u2", "flagged": True, "detector_version": "d2"})
    q.update({"user_id": "u1", "flagged": False})  # cleared
    q.update(None, key="u2")  # tombstone clears too
    q.update({"user_id": "u3", "flagged": True})
    assert q.flagged == {"u3"} and q.detector_version == "d2"


def test_clean_events_drops_suspect_flagged_trained_and_duplicates():
    events = _rows(
        ("e1", "ok", "a", "click", None, 10),
        ("e2", "cheat", "a", "click", None, 11),
        ("e3", "late", "a", "click", None, 12, True),
        ("e1", "ok", "a", "click", None, 13),
        ("e4", "ok", "b", "click", None, 5),
        ("e5", "ok", "c", "click", None, 14),
        ("e6", "ok", "d", "click", None, 15),
    )
    trained = OffsetRanges({"events/0": [[0, 9]]})
    kept, counts = clean_events(events, {"cheat"}, trained, known_event_ids=["e6"])
    assert kept["event_id"].tolist() == ["e1", "e5"]
    assert counts == {
        "rows": 7,
        "dropped_suspect": 1,
        "dropped_flagged": 1,
        "dropped_trained": 1,
        "dropped_duplicate": 2,
        "kept": 2,
    }


# ---- rounds -------------------------------------------------------------------------------------


def _windows(
    n_windows: int = 4, n_users: int = 120, n_items: int = 150, seed: int = 5, extra: list[tuple] = ()
) -> tuple[list[Batch], dict[str, pd.DataFrame]]:
    """A rating population cut into time-ordered windows of one partition, plus extra (user, item) clicks."""
    df = make_ratings(n_users, n_items, seed=seed).sort_values("timestamp", kind="stable").reset_index(drop=True)
    events = pd.DataFrame(
        {
            "event_id": [f"e{n}" for n in range(len(df))],
            "user_id": df["user"],
            "item_id": df["item"],
            "type": "rating",
            "ts": df["timestamp"],
            "value": df["rating"],
            "session_id": None,
            "partition": 0,
            "offset": np.arange(len(df)),
            "kafka_ts": df["timestamp"] + 5,
            "suspect": False,
        }
    )
    for n, (user, item, suspect) in enumerate(extra):
        row = {
            **events.iloc[-1].to_dict(),
            "event_id": f"x{n}",
            "user_id": user,
            "item_id": item,
            "type": "click",
            "value": None,
            "offset": len(events),
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
        batches.append(
            Batch(
                {
                    "uri": uri,
                    "path": uri[6:],
                    "rows": len(part),
                    "topic": "events",
                    "partition": 0,
                    "first_offset": first,
                    "last_offset": last,
                    "min_kafka_ts": float(part["kafka_ts"].min()),
                    "max_kafka_ts": float(part["kafka_ts"].max()),
                    "suspect_rows": int(part["suspect"].sum()),
                },
                "batches",
                0,
                k,
            )
        )
    return batches, files


class Recorder(TrainerMetrics):
    def __init__(self):
        self.rounds: list[RoundResult] = []
        self.consumed = 0

    def round_done(self, result):
        self.rounds.append(result)

    def batches_consumed(self, n):
        self.consumed += n


def _trainer(tmp_path, files, calls=None, **config) -> Trainer:
    def on_round(model, report, lineage):
        if calls is not None:
            calls.append((model, report, lineage))

    cfg = TrainerConfig(**{"model": "bpr", "epochs": 5, "first_epochs": 20, **config})
    return Trainer(
        cfg, StateStore(tmp_path / "state"), read_batch=files.__getitem__, on_round=on_round, metrics=Recorder()
    )


def test_one_round_trains_evaluates_reports_and_commits(tmp_path):
    batches, files = _windows(n_windows=3)
    calls = []
    trainer = _trainer(tmp_path, files, calls, min_batch_rows=10**9)
    source = MemorySource(batches)
    results = run(trainer, source, Quarantine(), idle_timeout=0)
    assert [r.outcome for r in results] == ["success"] and results[0].batches == 3
    ((model, report, lineage),) = calls
    assert report["test_users"] > 50 and 0 < report["hr@10"] <= 1 and set(report["fgsm"]) == {"0.1", "0.25"}
    assert report["rows"]["kept"] == sum(len(f) for f in files.values())
    assert lineage["offset_ranges"] == {
        "events/0": [batches[-1].announcement["first_offset"], batches[-1].announcement["last_offset"]]
    }
    assert [b["uri"] for b in lineage["batches"]] == list(files)
    assert lineage["trainer_config"]["model"] == "bpr" and lineage["model_kind"] == "bpr"
    items, _ = model.recommend(["1", "2"], k=10)
    assert items.shape == (2, 10) and all(i is not None for i in items.ravel())
    assert source.committed == batches and trainer.metrics.consumed == 3
    assert trainer.metrics.rounds[0].samples == results[0].samples > 0
    # held-out pairs are not trained this round, and are carried to the next one
    held = set(zip(trainer.state.carry["user"], trainer.state.carry["item"]))
    assert len(held) == report["test_users"]
    u, i = model.users.lookup([p[0] for p in held]), model.items.lookup([p[1] for p in held])
    known = (u >= 0) & (i >= 0)
    assert not model.seen.contains(u[known], i[known]).any()


def test_min_batch_rows_accumulates_announcements(tmp_path):
    batches, files = _windows(n_windows=4)
    rows = batches[0].announcement["rows"]
    trainer = _trainer(tmp_path, files, min_batch_rows=2 * rows)
    results = run(trainer, MemorySource(batches, per_poll=1), Quarantine(), idle_timeout=0)
    assert [r.batches for r in results] == [2, 2]


def test_flagged_users_are_quarantined_and_cleared_users_trained(tmp_path):
    extra = [
        ("cheat", "1", False),
        ("cheat", "2", False),
        ("penitent", "1", False),
        ("penitent", "3", False),
        ("marked", "4", True),
        ("marked", "5", True),
    ]
    batches, files = _windows(n_windows=2, extra=extra)
    flags = [
        ("cheat", {"user_id": "cheat", "flagged": True, "detector_version": "v7"}),
        ("penitent", {"user_id": "penitent", "flagged": True}),
        ("penitent", {"user_id": "penitent", "flagged": False}),
    ]
    calls = []
    trainer = _trainer(tmp_path, files, calls, min_batch_rows=10**9)
    run(trainer, MemorySource(batches, flags), Quarantine(), idle_timeout=0)
    ((model, report, lineage),) = calls
    assert "cheat" not in model.users and "marked" not in model.users  # flagged now / suspect when written
    assert "penitent" in model.users
    assert report["rows"]["dropped_flagged"] == 2 and report["rows"]["dropped_suspect"] == 2
    assert lineage["detector_version"] == "v7" and lineage["quarantined_users"] == 1


def test_late_quarantine_drops_a_user_from_replay_of_earlier_rounds(tmp_path):
    extra = [("sleeper", "1", False), ("sleeper", "2", False), ("sleeper", "3", False)]
    batches, files = _windows(n_windows=2, extra=extra)
    first, second = batches[:1], batches[1:]
    # the sleeper's clicks are in the last window: move them into the first window instead
    files[first[0].announcement["uri"]] = pd.concat(
        [files[first[0].announcement["uri"]], files[second[0].announcement["uri"]].tail(3)]
    )
    files[second[0].announcement["uri"]] = files[second[0].announcement["uri"]].iloc[:-3]
    trainer = _trainer(tmp_path, files)
    quarantine = Quarantine()
    run(trainer, MemorySource(first), quarantine, idle_timeout=0)
    assert "sleeper" in trainer.state.model.users
    before = trainer.state.model.net.users.detach().clone()
    row = trainer.state.model.users.lookup(["sleeper"])[0]
    flags = [("sleeper", {"user_id": "sleeper", "flagged": True})]
    run(trainer, MemorySource(second, flags), quarantine, idle_timeout=0)
    # no replayed event of the sleeper was trained: Adam never touched its row
    assert np.array_equal(trainer.state.model.net.users.detach()[row].numpy(), before[row].numpy())


def test_state_resumes_after_restart_and_skips_trained_batches(tmp_path):
    batches, files = _windows(n_windows=4)
    trainer = _trainer(tmp_path, files)
    run(trainer, MemorySource(batches[:2], per_poll=1), Quarantine(), idle_timeout=0)
    saved = trainer.state
    assert saved.round == 2
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [
        "carry-000002.parquet",
        "history-000002.parquet",
        "model-000002.pt",
        "state.json",
    ]

    resumed = _trainer(tmp_path, files)  # a new process
    assert resumed.state.round == 2 and resumed.state.trained.to_dict() == saved.trained.to_dict()
    assert resumed.state.model.users == saved.model.users
    assert np.array_equal(resumed.state.model.net.items.detach().numpy(), saved.model.net.items.detach().numpy())
    pd.testing.assert_frame_equal(resumed.state.history, saved.history)
    source = MemorySource(batches, per_poll=1)  # redelivery from the start: the first two are skipped
    results = run(resumed, source, Quarantine(), idle_timeout=0)
    assert [r.round for r in results] == [3, 4] and source.committed == batches


def test_a_window_rewritten_with_a_wider_range_trains_only_the_new_offsets(tmp_path):
    batches, files = _windows(n_windows=2)
    trainer = _trainer(tmp_path, files)
    run(trainer, MemorySource(batches[:1]), Quarantine(), idle_timeout=0)
    both = pd.concat([files[b.announcement["uri"]] for b in batches], ignore_index=True)
    wide = {**batches[1].announcement, "uri": "mem://wide", "first_offset": 0, "rows": len(both)}
    files["mem://wide"] = both
    calls = []
    trainer.on_round = lambda model, report, lineage: calls.append(report)
    run(trainer, MemorySource([Batch(wide, "batches", 0, 9)]), Quarantine(), idle_timeout=0)
    assert calls[0]["rows"]["dropped_trained"] == len(files[batches[0].announcement["uri"]])
    assert calls[0]["rows"]["kept"] == len(files[batches[1].announcement["uri"]])


def test_a_failed_round_rolls_back_keeps_its_batches_and_commits_nothing(tmp_path):
    batches, files = _windows(n_windows=2)
    trainer = _trainer(tmp_path, files)
    run(trainer, MemorySource(batches[:1]), Quarantine(), idle_timeout=0)

    def broken(model, report, lineage):
        raise RuntimeError("registry down")

    trainer.on_round = broken
    source = MemorySource(batches[1:])
    with pytest.raises(RuntimeError):
        run(trainer, source, Quarantine(), idle_timeout=0, max_failures=2, sleep=lambda s: None)
    assert [r.outcome for r in trainer.metrics.rounds] == ["success", "failure", "failure"]
    assert source.committed == [] and trainer.pending == batches[1:]
    assert trainer.state.round == 1 and StateStore(tmp_path / "state").load().round == 1


def test_a_kill_during_save_leaves_the_previous_state_whole(tmp_path):
    batches, files = _windows(n_windows=2)
    trainer = _trainer(tmp_path, files)
    run(trainer, MemorySource(batches[:1]), Quarantine(), idle_timeout=0)
    state_dir = tmp_path / "state"
    (state_dir / "model-000002.pt").write_bytes(b"half a model")  # round 2 died while saving
    (state_dir / "state.json.tmp").write_text("{")
    resumed = _trainer(tmp_path, files)
    assert resumed.state.round == 1
    run(resumed, MemorySource(batches[1:]), Quarantine(), idle_timeout=0)
    assert StateStore(state_dir).load().round == 2
    assert "state.json.tmp" not in {p.name for p in state_dir.iterdir()}


def test_save_round_files_writes_model_and_report(tmp_path):
    batches, files = _windows(n_windows=1)
    trainer = _trainer(tmp_path, files)
    trainer.on_round = save_round_files(tmp_path / "models")
    run(trainer, MemorySource(batches), Quarantine(), idle_timeout=0)
    doc = json.loads((tmp_path / "models" / "round-1.json").read_text())
    assert doc["report"]["round"] == 1 and doc["lineage"]["batches"][0]["uri"] == batches[0].announcement["uri"]
    from training.models import load_recommender

    assert len(load_recommender(tmp_path / "models" / "round-1.pt").users) == 120
