"""The poll loop: accumulate to min_batch_rows, roll back and retry a failed round, commit only what is saved."""

from __future__ import annotations

import pytest

from tests.unit.training.stream.windows import make_trainer, make_windows
from training.stream.loop import run
from training.stream.quarantine import Quarantine
from training.stream.state import StateStore
from training.testing import MemorySource


def test_min_batch_rows_accumulates_announcements(tmp_path):
    batches, files = make_windows(n_windows=4)
    rows = batches[0].announcement["rows"]
    trainer = make_trainer(tmp_path, files, min_batch_rows=2 * rows)
    results = run(trainer, MemorySource(batches, per_poll=1), Quarantine(), idle_timeout=0)
    assert [r.batches for r in results] == [2, 2]


def test_flush_after_trains_the_last_partial_windows_and_keeps_running(tmp_path):
    batches, files = make_windows(n_windows=3)
    rows = batches[0].announcement["rows"]
    trainer = make_trainer(tmp_path, files, min_batch_rows=2 * rows)
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0  # every look at the clock is a second later
        return now[0]

    source = MemorySource(batches, per_poll=1)
    results = run(trainer, source, Quarantine(), max_rounds=2, flush_after=5.0, clock=clock)
    assert [r.batches for r in results] == [2, 1]  # the third window alone, once nothing came for 5 s
    assert source.committed == batches and not trainer.pending


def test_without_flush_after_a_partial_window_waits(tmp_path):
    batches, files = make_windows(n_windows=3)
    rows = batches[0].announcement["rows"]
    trainer = make_trainer(tmp_path, files, min_batch_rows=2 * rows)
    polls = [0]

    class CountingSource(MemorySource):
        def poll(self, timeout_s):
            polls[0] += 1
            if polls[0] > 50:
                raise StopIteration  # ends the otherwise endless loop of the test
            return super().poll(timeout_s)

    with pytest.raises(StopIteration):
        run(trainer, CountingSource(batches, per_poll=1), Quarantine(), max_rounds=2)
    assert trainer.state.round == 1 and len(trainer.pending) == 1


def test_a_failed_round_rolls_back_keeps_its_batches_and_commits_nothing(tmp_path):
    batches, files = make_windows(n_windows=2)
    trainer = make_trainer(tmp_path, files)
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
