"""The trainer's poll loop over any `BatchSource`: offer batches, train when ready, commit what is saved.

Failures back off (2, 4… s) and the `max_failures`-th in a row is raised. The clock and sleep are
injected so tests run it instantly. It must never commit a batch that is still pending, nor import
a concrete source (Kafka lives in `kafka_source`, lists in `training.testing`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from training.stream.quarantine import Quarantine
from training.stream.trainer import BatchSource, RoundResult, Trainer

__all__ = ["run"]

log = logging.getLogger(__name__)


def run(
    trainer: Trainer,
    source: BatchSource,
    quarantine: Quarantine,
    max_rounds: int | None = None,
    idle_timeout: float | None = None,
    flush_after: float | None = None,
    poll_s: float = 1.0,
    max_failures: int = 3,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[RoundResult]:
    """Poll, train when enough rows are pending, commit what is saved; stop after max_rounds or when idle.

    flush_after: once no batch has come for this long, train what is pending even below the
    minimum (the last, partial windows of a replay), and keep running.
    """
    results: list[RoundResult] = []
    last_batch, failures = clock(), 0
    while max_rounds is None or len(results) < max_rounds:
        batches, flags = source.poll(poll_s)
        for key, flag in flags:
            quarantine.update(flag, key)
        trainer.catalog.apply(source.catalog_updates())
        for batch in batches:
            trainer.offer(batch)
        if batches:
            last_batch = clock()
        quiet_s = 0.0 if batches else clock() - last_batch
        idle = not batches and idle_timeout is not None and quiet_s >= idle_timeout
        flush = not batches and flush_after is not None and quiet_s >= flush_after
        trainer.metrics.pending(len(trainer.pending) + source.backlog())
        if trainer.ready(idle or flush):
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
