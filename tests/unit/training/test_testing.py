"""The shipped test doubles behave as the ports they stand in for."""

from training.stream.trainer import Batch, RoundResult
from training.testing import MemorySource, RecordingMetrics, RecordingRounds


def test_memory_source_hands_out_batches_per_poll_and_every_flag_once():
    batches = [Batch({"n": n}, "batches", 0, n) for n in range(3)]
    source = MemorySource(batches, flags=[("u", {"user_id": "u", "flagged": True})], per_poll=2)
    assert source.backlog() == 3
    assert source.poll(0.0) == (batches[:2], [("u", {"user_id": "u", "flagged": True})])
    assert source.poll(0.0) == (batches[2:], []) and source.poll(0.0) == ([], [])
    source.commit(batches[:1])
    assert source.committed == batches[:1] and source.backlog() == 0


def test_recorders_keep_what_they_were_told():
    metrics, rounds = RecordingMetrics(), RecordingRounds()
    metrics.round_done(RoundResult("success", 1, 0.5))
    metrics.batches_consumed(2)
    metrics.pending(4)
    assert [r.round for r in metrics.rounds] == [1] and metrics.consumed == 2 and metrics.pending_batches == 4
    rounds("model", {"round": 1}, {"batches": []})
    assert rounds.calls == [("model", {"round": 1}, {"batches": []})]
