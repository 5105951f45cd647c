"""When the stream's detector flushes what it folded: once a period, or as soon as its input pauses."""

from streams.worker.fraud_agent import FOLD_WINDOW_S, flush_due

PERIOD_S = 0.5


def test_a_busy_input_is_flushed_once_a_period():
    # takes keep coming (the last one just now): flush only when the period since the last flush is over
    assert not flush_due(now=10.3, flushed_at=10.0, folded_at=10.3, period_s=PERIOD_S)
    assert flush_due(now=10.5, flushed_at=10.0, folded_at=10.5, period_s=PERIOD_S)


def test_a_pause_in_the_input_brings_the_flush_forward():
    # the period is not over, but no take came for a fold window: the last events are scored now
    assert flush_due(now=10.1 + FOLD_WINDOW_S, flushed_at=10.0, folded_at=10.1, period_s=PERIOD_S)
    assert not flush_due(now=10.1 + FOLD_WINDOW_S / 2, flushed_at=10.0, folded_at=10.1, period_s=PERIOD_S)
