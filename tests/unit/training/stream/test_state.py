"""Trainer state: resume after a restart, skip trained batches, survive a kill during save."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.unit.training.stream.windows import make_trainer, make_windows
from training.stream.loop import run
from training.stream.quarantine import Quarantine
from training.stream.state import StateStore
from training.testing import MemorySource


def test_state_resumes_after_restart_and_skips_trained_batches(tmp_path):
    batches, files = make_windows(n_windows=4)
    trainer = make_trainer(tmp_path, files)
    run(trainer, MemorySource(batches[:2], per_poll=1), Quarantine(), idle_timeout=0)
    saved = trainer.state
    assert saved.round == 2
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [
        "carry-000002.parquet",
        "history-000002.parquet",
        "model-000002.pt",
        "state.json",
        "waiting-000002.parquet",
    ]

    resumed = make_trainer(tmp_path, files)  # a new process
    assert resumed.state.round == 2 and resumed.state.trained.to_dict() == saved.trained.to_dict()
    assert resumed.state.model.users == saved.model.users
    assert np.array_equal(resumed.state.model.net.items.detach().numpy(), saved.model.net.items.detach().numpy())
    pd.testing.assert_frame_equal(resumed.state.history, saved.history)
    source = MemorySource(batches, per_poll=1)  # redelivery from the start: the first two are skipped
    results = run(resumed, source, Quarantine(), idle_timeout=0)
    assert [r.round for r in results] == [3, 4] and source.committed == batches


def test_a_kill_during_save_leaves_the_previous_state_whole(tmp_path):
    batches, files = make_windows(n_windows=2)
    trainer = make_trainer(tmp_path, files)
    run(trainer, MemorySource(batches[:1]), Quarantine(), idle_timeout=0)
    state_dir = tmp_path / "state"
    (state_dir / "model-000002.pt").write_bytes(b"half a model")  # round 2 died while saving
    (state_dir / "state.json.tmp").write_text("{")
    resumed = make_trainer(tmp_path, files)
    assert resumed.state.round == 1
    run(resumed, MemorySource(batches[1:]), Quarantine(), idle_timeout=0)
    assert StateStore(state_dir).load().round == 2
    assert "state.json.tmp" not in {p.name for p in state_dir.iterdir()}
