"""The ingest agent: the one reader of raw `events`, giving every input its verdict, once.

Per slice of a batch: `ingest_batch` (pure) → sends (dead letters, `ValidBatch` envelopes to
`events.valid` and `fraud.events`, `ItemDeltas` to `items.deltas`) → metrics; then, once per batch,
the changed profiles' writes (one changelog record per user per batch). The batch is held
(`hold`) while this happens and acknowledged only when all of it is done: an exception that is
not about one input (the broker, the disk, a bug in the agent) stops the worker without committing
the batch, so it is read again on restart. One bad input never raises here: `ingest_batch`
dead-letters it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import faust
import msgspec

from streams.contract.records import ItemDeltas, ValidBatch, encode
from streams.contract.settings import Settings
from streams.kafka.faust_app import processing, table_view
from streams.kafka.partitioner import partition_of
from streams.worker import metrics
from streams.worker.ingest import BatchProfiles, BatchResult, RawRecord, ingest_batch, slices_by_bytes, split_at_offsets
from streams.worker.profiles import ProfileCache, ProfileConfig, UserProfile
from streams.worker.validation import ValidationLimits

__all__ = ["install", "ENVELOPE_EVENTS"]


ENVELOPE_EVENTS = 1_000  # events per envelope: ~150 kB, well under Kafka's 1 MB message limit


def install(app: faust.App, settings: Settings, topology, limits: ValidationLimits) -> None:
    """Add the ingest agent, the profile view and the consumer-lag export to the worker's app."""
    config = ProfileConfig(recent_items=settings.recent_items, rate_half_life_s=settings.rate_half_life_s)
    profiles = topology.profiles

    cache = ProfileCache(settings.profile_cache_profiles)

    def load_profile(user_id: str) -> dict | None:
        stored = profiles.get(user_id.encode())
        return None if stored is None else msgspec.json.decode(stored)

    def load_for_update(user_id: str) -> UserProfile | None:
        key = user_id.encode()
        return cache.load(key, profiles.get(key), msgspec.json.decode)

    def profile_rows(changed: dict[str, UserProfile]) -> dict[bytes, bytes]:
        rows = {}
        for user_id, profile in changed.items():
            key, value = user_id.encode(), msgspec.json.encode(profile.snapshot())
            rows[key] = value
            cache.wrote(key, value, profile)
        return rows

    async def send(result: BatchResult) -> None:
        await topology.changelogs.send_records(
            app, topology.deadletter.get_topic_name(), [(None, encode(letter)) for letter in result.dead_letters]
        )
        for envelope in result.envelopes():
            for events in split_at_offsets(envelope.events, ENVELOPE_EVENTS):
                chunk = encode(ValidBatch(envelope.topic, envelope.partition, events))
                await topology.valid.send(value=chunk, partition=envelope.partition % settings.topic_partitions)
                if settings.fraud_enabled:
                    await topology.fraud_events.send(value=chunk, partition=0)
        # One message per item partition, not per item: the item agent pays Faust's cost per batch.
        by_partition = defaultdict(list)
        for delta in result.item_deltas():
            by_partition[partition_of(delta.item_id.encode(), settings.topic_partitions)].append(delta)
        for partition, deltas in by_partition.items():
            await topology.item_deltas.send(value=encode(ItemDeltas(deltas)), partition=partition)

    @app.agent(topology.events, name="ingest")
    async def ingest(stream):
        """Validate, dead-letter and fold events into profiles, one batch at a time; pass valid ones on."""
        async for events in stream.take_events(settings.batch_max_events, within=settings.batch_max_seconds):
            async with processing(app, events, topology.changelogs, "ingest") as events:
                records = [
                    RawRecord(e.value, e.message.topic, e.message.partition, e.message.offset, e.message.timestamp)
                    for e in events
                ]
                # Envelopes can make a batch of messages huge in events: work through it in slices,
                # letting the event loop breathe between them (heartbeats, /metrics). Each changed
                # profile is written once, after the last slice: a busy user's profile is one
                # changelog record per batch, not one per slice. Until then a later slice must see
                # the earlier slices' changes, so it loads through `BatchProfiles`.
                batch = BatchProfiles(load_for_update)
                for part in slices_by_bytes(records, settings.batch_max_bytes):
                    started = time.time()
                    result = ingest_batch(part, batch.load, limits, config, started)
                    batch.took(result)
                    await send(result)
                    _observe(result, part, started)
                    await asyncio.sleep(0)
                await topology.changelogs.write(app, profiles, profile_rows(batch.changed))

    exported_lag: set[tuple[str, str]] = set()

    @app.timer(5.0)
    async def export_consumer_lag():
        """Lag of every assigned input partition, from the offsets Faust's monitor tracks."""
        monitor = app.monitor
        assigned = {
            (tp.topic, str(tp.partition)): tp for tp in app.consumer.assignment() if tp.topic == settings.events_topic
        }
        for labels, tp in assigned.items():
            end = monitor.tp_end_offsets.get(tp)
            if end is not None:
                committed = monitor.tp_committed_offsets.get(tp, 0)
                metrics.CONSUMER_LAG.labels(*labels).set(max(0, end - committed))
                exported_lag.add(labels)
        for labels in exported_lag - assigned.keys():  # revoked: stop exporting it
            metrics.CONSUMER_LAG.remove(*labels)
            exported_lag.discard(labels)

    @table_view(app, "/profiles/{user_id}", profiles, match_info="user_id")
    async def profile_view(web, request, user_id: str):
        """The profile of one user as JSON, 404 if the user was never seen."""
        stored = load_profile(user_id)
        if stored is None:
            return web.json({"error": f"unknown user {user_id!r}"}, status=404)
        return web.json(UserProfile.restore(stored).view())


def _observe(result: BatchResult, records: list[RawRecord], started: float) -> None:
    done = time.time()
    for kind, n in result.applied_by_type.items():
        metrics.EVENTS_PROCESSED.labels(kind).inc(n)
    for code, n in result.dead_by_reason.items():
        metrics.DEAD_LETTERS.labels(code).inc(n)
    if result.duplicates or result.redelivered:
        metrics.EVENTS_DUPLICATE.inc(result.duplicates + result.redelivered)
    for record in records:
        metrics.EVENT_LATENCY.observe(max(0.0, done - record.kafka_ts))
    metrics.BATCH_SECONDS.observe(done - started)
    metrics.BATCH_SIZE.observe(result.inputs)
