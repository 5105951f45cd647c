"""Rounds: train, evaluate held-out new pairs, report with lineage, quarantine (now and late), trim rewrites."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.unit.training.stream.windows import make_trainer, make_windows
from training.stream.loop import run
from training.stream.quarantine import Quarantine
from training.stream.trainer import Batch
from training.testing import MemorySource, RecordingRounds


def test_one_round_trains_evaluates_reports_and_commits(tmp_path):
    batches, files = make_windows(n_windows=3)
    rounds = RecordingRounds()
    trainer = make_trainer(tmp_path, files, rounds, min_batch_rows=10**9)
    source = MemorySource(batches)
    results = run(trainer, source, Quarantine(), idle_timeout=0)
    assert [r.outcome for r in results] == ["success"] and results[0].batches == 3
    ((model, report, lineage),) = rounds.calls
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


def test_flagged_users_are_quarantined_and_cleared_users_trained(tmp_path):
    extra = [
        ("cheat", "1", False),
        ("cheat", "2", False),
        ("penitent", "1", False),
        ("penitent", "3", False),
        ("marked", "4", True),
        ("marked", "5", True),
    ]
    batches, files = make_windows(n_windows=2, extra=extra)
    flags = [
        ("cheat", {"user_id": "cheat", "flagged": True, "detector_version": "v7"}),
        ("penitent", {"user_id": "penitent", "flagged": True}),
        ("penitent", {"user_id": "penitent", "flagged": False}),
    ]
    rounds = RecordingRounds()
    trainer = make_trainer(tmp_path, files, rounds, min_batch_rows=10**9)
    run(trainer, MemorySource(batches, flags), Quarantine(), idle_timeout=0)
    ((model, report, lineage),) = rounds.calls
    assert "cheat" not in model.users and "marked" not in model.users  # flagged now / suspect when written
    assert "penitent" in model.users
    assert report["rows"]["dropped_flagged"] == 2 and report["rows"]["dropped_suspect"] == 2
    assert lineage["detector_version"] == "v7" and lineage["quarantined_users"] == 1


def test_an_undefended_trainer_trains_flagged_and_suspect_users_too(tmp_path):
    extra = [("cheat", "1", False), ("cheat", "2", False), ("marked", "4", True), ("marked", "5", True)]
    batches, files = make_windows(n_windows=2, extra=extra)
    flags = [("cheat", {"user_id": "cheat", "flagged": True})]
    rounds = RecordingRounds()
    trainer = make_trainer(tmp_path, files, rounds, min_batch_rows=10**9, quarantine=False)
    run(trainer, MemorySource(batches, flags), Quarantine(), idle_timeout=0)
    ((model, report, _),) = rounds.calls
    assert "cheat" in model.users and "marked" in model.users
    assert report["rows"]["dropped_flagged"] == 0 and report["rows"]["dropped_suspect"] == 0


def test_late_quarantine_drops_a_user_from_replay_of_earlier_rounds(tmp_path):
    extra = [("sleeper", "1", False), ("sleeper", "2", False), ("sleeper", "3", False)]
    batches, files = make_windows(n_windows=2, extra=extra)
    first, second = batches[:1], batches[1:]
    # the sleeper's clicks are in the last window: move them into the first window instead
    files[first[0].announcement["uri"]] = pd.concat(
        [files[first[0].announcement["uri"]], files[second[0].announcement["uri"]].tail(3)]
    )
    files[second[0].announcement["uri"]] = files[second[0].announcement["uri"]].iloc[:-3]
    trainer = make_trainer(tmp_path, files)
    quarantine = Quarantine()
    run(trainer, MemorySource(first), quarantine, idle_timeout=0)
    assert "sleeper" in trainer.state.model.users
    before = trainer.state.model.net.users.detach().clone()
    row = trainer.state.model.users.lookup(["sleeper"])[0]
    flags = [("sleeper", {"user_id": "sleeper", "flagged": True})]
    run(trainer, MemorySource(second, flags), quarantine, idle_timeout=0)
    # no replayed event of the sleeper was trained: Adam never touched its row
    assert np.array_equal(trainer.state.model.net.users.detach()[row].numpy(), before[row].numpy())


def test_a_window_rewritten_with_a_wider_range_trains_only_the_new_offsets(tmp_path):
    batches, files = make_windows(n_windows=2)
    trainer = make_trainer(tmp_path, files)
    run(trainer, MemorySource(batches[:1]), Quarantine(), idle_timeout=0)
    both = pd.concat([files[b.announcement["uri"]] for b in batches], ignore_index=True)
    wide = {**batches[1].announcement, "uri": "mem://wide", "first_offset": 0, "rows": len(both)}
    files["mem://wide"] = both
    rounds = RecordingRounds()
    trainer.on_round = rounds
    run(trainer, MemorySource([Batch(wide, "batches", 0, 9)]), Quarantine(), idle_timeout=0)
    ((_, report, _),) = rounds.calls
    assert report["rows"]["dropped_trained"] == len(files[batches[0].announcement["uri"]])
    assert report["rows"]["kept"] == len(files[batches[1].announcement["uri"]])
