"""Kafka adapter of the trainer: window announcements from `batches`, quarantine from `fraud.flags`.

`batches` is read by the trainer's own consumer group and committed explicitly, only for batches
the trainer has saved a round for (at-least-once). `fraud.flags` is read from the beginning at
every start without a group (its latest record per user is the user's state), and drained up to
its end before each poll, so a round sees the flags as they are at training time.
This module must never commit an offset the trainer did not hand back as handled.
"""

from __future__ import annotations

import json
import logging
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from training.stream.trainer import Batch

log = logging.getLogger(__name__)

__all__ = ["KafkaBatchSource"]


def _json(value: bytes | None):
    return None if value is None else json.loads(value)


class KafkaBatchSource:
    """A BatchSource over Kafka with kafka-python."""

    def __init__(
        self, bootstrap: str, batches_topic: str, flags_topic: str, group_id: str, tansu_workarounds: bool = False
    ) -> None:
        common = dict(
            bootstrap_servers=bootstrap.split(","),
            client_id="advrec-trainer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            value_deserializer=_json,
        )
        # Tansu's group join waits half the session timeout: keep it short, as the worker does.
        quirks = dict(session_timeout_ms=6_000, heartbeat_interval_ms=1_000) if tansu_workarounds else {}
        # A round may take long; the heartbeat thread keeps the membership, max_poll_interval the slack.
        self.batches = KafkaConsumer(group_id=group_id, max_poll_interval_ms=3_600_000, **common, **quirks)
        self.batches.subscribe([batches_topic])
        self.flags = KafkaConsumer(group_id=None, **common)
        partitions = self.flags.partitions_for_topic(flags_topic) or set()
        self.flag_partitions = [TopicPartition(flags_topic, p) for p in sorted(partitions)]
        self.flags.assign(self.flag_partitions)
        if self.flag_partitions:
            self.flags.seek_to_beginning(*self.flag_partitions)

    def _drain_flags(self, limit_s: float = 10.0) -> list[tuple[str | None, dict | None]]:
        """Every flag record up to the end offsets as of now."""
        if not self.flag_partitions:
            return []
        end = self.flags.end_offsets(self.flag_partitions)
        out, deadline = [], time.monotonic() + limit_s
        while any(self.flags.position(tp) < end[tp] for tp in self.flag_partitions) and time.monotonic() < deadline:
            for records in self.flags.poll(timeout_ms=200).values():
                out += [(r.key.decode() if r.key else None, r.value) for r in records]
        return out

    def poll(self, timeout_s: float) -> tuple[list[Batch], list[tuple[str | None, dict | None]]]:
        """Flags up to now, then the announcements that arrive within timeout_s."""
        flags = self._drain_flags()
        batches = []
        for records in self.batches.poll(timeout_ms=int(timeout_s * 1000)).values():
            batches += [Batch(r.value, r.topic, r.partition, r.offset) for r in records if r.value]
        return batches, flags

    def commit(self, batches: list[Batch]) -> None:
        """Commit past the given batches, per partition of `batches`."""
        offsets: dict[TopicPartition, int] = {}
        for b in batches:
            tp = TopicPartition(b.topic, b.partition)
            offsets[tp] = max(offsets.get(tp, 0), b.offset + 1)
        if not offsets:
            return
        try:
            # Bounded: after a kill -9 the group rebalances, and an unbounded commit can wait on it
            # forever. A commit lost here is harmless: the trainer's saved state records the
            # trained offsets, so redelivered announcements are skipped.
            self.batches.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()}, timeout_ms=10_000)
        except KafkaError as exc:
            log.warning(
                "offset commit of %d partition(s) failed, will be redone by a later commit: %s", len(offsets), exc
            )

    def backlog(self) -> int:
        """Announcements on the assigned partitions not yet polled."""
        assigned = list(self.batches.assignment())
        if not assigned:
            return 0
        end = self.batches.end_offsets(assigned)
        return sum(max(0, end[tp] - self.batches.position(tp)) for tp in assigned)

    def close(self) -> None:
        """Leave the group and close both consumers."""
        self.batches.close()
        self.flags.close()
