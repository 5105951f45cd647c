"""Kafka adapter of the trainer: window announcements from `batches`, quarantine from `fraud.flags`,
item text from the worker's catalog changelog (valid `CatalogEntry`s only).

`batches` is read by the trainer's own consumer group and committed explicitly, only for batches
the trainer has saved a round for (at-least-once). `fraud.flags` is read from the beginning at
every start without a group (its latest record per user is the user's state), and drained up to
its end before each poll, so a round sees the flags as they are at training time; the catalog
changelog likewise (its latest record per item is the item's entry).
This module must never commit an offset the trainer did not hand back as handled.
"""

from __future__ import annotations

import json
import logging
import time

import msgspec
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from streams.contract.records import CatalogEntry
from training.stream.catalog import CatalogUpdate
from training.stream.trainer import Batch

log = logging.getLogger(__name__)

__all__ = ["KafkaBatchSource"]


def _json(value: bytes | None):
    return None if value is None else json.loads(value)


class KafkaBatchSource:
    """A BatchSource over Kafka with kafka-python."""

    def __init__(
        self,
        bootstrap: str,
        batches_topic: str,
        flags_topic: str,
        group_id: str,
        tansu_workarounds: bool = False,
        catalog_topic: str | None = None,
        session_timeout_s: float = 10.0,
    ) -> None:
        common = dict(
            bootstrap_servers=bootstrap.split(","),
            client_id="advrec-trainer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            value_deserializer=_json,
        )
        # A killed trainer's successor waits for the dead member's session to time out before it
        # is given the batches: kafka-python's default (45 s) made a restart wait 45 s; the session
        # is the worker's and the scorer's (`group_session_timeout_s`). Tansu's group join waits
        # half the session timeout: keep it short there, as the worker does.
        session = dict(session_timeout_ms=int(session_timeout_s * 1000))
        session["heartbeat_interval_ms"] = max(1_000, session["session_timeout_ms"] // 4)
        if tansu_workarounds:
            session = dict(session_timeout_ms=6_000, heartbeat_interval_ms=1_000)
        # A round may take long; the heartbeat thread keeps the membership, max_poll_interval the slack.
        self.batches = KafkaConsumer(group_id=group_id, max_poll_interval_ms=3_600_000, **common, **session)
        self.batches.subscribe([batches_topic])
        self.flags, self.flag_partitions = self._from_beginning(flags_topic, common)
        self.catalog, self.catalog_partitions = (None, [])
        self.catalog_topic = catalog_topic
        self._common = {**common, "value_deserializer": None}

    @staticmethod
    def _from_beginning(topic: str, options: dict) -> tuple[KafkaConsumer, list[TopicPartition]]:
        """A group-less consumer of every partition of `topic`, at the beginning."""
        consumer = KafkaConsumer(group_id=None, **options)
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        if partitions:
            consumer.seek_to_beginning(*partitions)
        return consumer, partitions

    @staticmethod
    def _drain(consumer: KafkaConsumer | None, partitions: list[TopicPartition], limit_s: float = 10.0) -> list:
        """Every record of the partitions up to their end offsets as of now."""
        if consumer is None or not partitions:
            return []
        end = consumer.end_offsets(partitions)
        out, deadline = [], time.monotonic() + limit_s
        while any(consumer.position(tp) < end[tp] for tp in partitions) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                out += records
        return out

    def _drain_flags(self) -> list[tuple[str | None, dict | None]]:
        """Every flag record up to the end offsets as of now."""
        return [(r.key.decode() if r.key else None, r.value) for r in self._drain(self.flags, self.flag_partitions)]

    def catalog_updates(self) -> list[CatalogUpdate]:
        """Every catalog changelog record up to its end offsets as of now (from the beginning at start)."""
        if self.catalog_topic is None:
            return []
        if self.catalog is None:  # the worker creates its changelog: wait for it rather than fail
            if self.catalog_topic not in self.flags.topics():
                return []
            self.catalog, self.catalog_partitions = self._from_beginning(self.catalog_topic, self._common)
        updates: list[CatalogUpdate] = []
        for r in self._drain(self.catalog, self.catalog_partitions):
            if r.key is None:
                continue
            if r.value is None:
                updates.append((r.key.decode(), None))
                continue
            try:
                updates.append((r.key.decode(), msgspec.json.decode(r.value, type=CatalogEntry)))
            except msgspec.DecodeError:
                # The changelog holds only entries the worker validated: this is not one of ours.
                log.warning("skipping a catalog changelog record that is not a CatalogEntry: %r", r.value[:200])
        return updates

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
        if self.catalog is not None:
            self.catalog.close()
