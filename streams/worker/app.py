"""The Faust application of the stream worker: topics, tables, the ingest agent and HTTP views.

`create_app` is called by the worker's composition root with the frozen Settings and the broker
to use. Agents stay short: batch in → `ingest_batch` (pure) → writes and sends out.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import faust

from streams.contract.records import encode
from streams.contract.settings import Settings
from streams.kafka.faust_app import add_metrics_page, app_options, processing_guarantee
from streams.worker import metrics, window_agent
from streams.worker.fraud_agent import install as install_fraud_agent
from streams.worker.ingest import BatchResult, RawRecord, ingest_batch
from streams.worker.profiles import ProfileConfig, UserProfile
from streams.worker.validation import ValidationLimits

__all__ = ["create_app", "WorkerContext", "BatchHook"]

# Called after each ingest batch is applied: (what the batch changed, the Faust events).
BatchHook = Callable[[BatchResult, list], Awaitable[None]]


@dataclass
class WorkerContext:
    """What the worker's parts share: settings, topics, tables, and hooks on each ingest batch."""

    settings: Settings
    limits: ValidationLimits
    topics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    batch_hooks: list[BatchHook] = field(default_factory=list)
    app: Any = None
    _partitioner_ready: bool = False

    async def partitioner_ready(self) -> None:
        """Make the producer track every table's changelog topic in its metadata (once).

        Tables written with `use_partitioner=True` hash keys with the producer's metadata
        (faust's `key_partition` reads it synchronously). aiokafka refreshes metadata only for the
        topics it tracks, and a topic seen in its first all-topics fetch is not tracked: as soon as
        it sends anywhere, Apache Kafka's answers drop the other changelogs and the next table write
        fails with a TypeError. Tracking them explicitly keeps them in every refresh.
        """
        if self._partitioner_ready:
            return
        producer = self.app.producer._ensure_producer()
        for table in self.tables.values():
            name = table.changelog_topic.get_topic_name()
            await producer.client.add_topic(name)
            await producer.partitions_for(name)
        self._partitioner_ready = True


def create_app(settings: Settings, bootstrap: str, tansu_workarounds: bool) -> faust.App:
    """Build the worker's Faust app against `bootstrap` (host:port[,...])."""
    app = faust.App(
        settings.app_id,
        **app_options(
            settings,
            bootstrap,
            tansu_workarounds,
            settings.web_port,
            str(settings.data_dir / "faust"),
            guarantee=processing_guarantee(settings, tansu_workarounds),
        ),
        stream_buffer_maxsize=max(4_096, 2 * settings.batch_max_events),
        broker_max_poll_records=settings.batch_max_events,
    )
    limits = ValidationLimits.from_settings(settings)
    context = WorkerContext(settings=settings, limits=limits, app=app)
    profile_config = ProfileConfig(recent_items=settings.recent_items, rate_half_life_s=settings.rate_half_life_s)

    events_topic = app.topic(
        settings.events_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )
    deadletter_topic = app.topic(
        settings.deadletter_topic, value_type=bytes, value_serializer="raw", partitions=settings.topic_partitions
    )
    # Keys are raw user/item ids and written with the default partitioner, so a profile's
    # changelog partition equals its user's `events` partition when producers key by user_id.
    # (key_type=bytes selects the raw key codec; values are JSON.)
    profiles = app.Table(
        "profiles", default=None, key_type=bytes, partitions=settings.topic_partitions, use_partitioner=True
    )
    popularity = app.Table(
        "item-popularity", default=int, key_type=bytes, partitions=settings.topic_partitions, use_partitioner=True
    )

    @app.agent(events_topic)
    async def ingest(stream):
        """Validate, dead-letter and fold events into profiles, one batch at a time."""
        async for events in stream.take_events(settings.batch_max_events, within=settings.batch_max_seconds):
            await context.partitioner_ready()
            started = time.time()
            records = [RawRecord(e.value, e.message.topic, e.message.partition, e.message.offset) for e in events]
            result = ingest_batch(
                records,
                lambda user: profiles.get(user.encode()),
                lambda item: popularity.get(item.encode(), 0),
                limits,
                profile_config,
                started,
            )
            for user_id, profile in result.profiles.items():
                profiles[user_id.encode()] = profile.snapshot()
            for item_id, count in result.popularity.items():
                popularity[item_id.encode()] = count
            for letter in result.dead_letters:
                await deadletter_topic.send(key=None, value=encode(letter))
            for hook in context.batch_hooks:
                await hook(result, events)
            done = time.time()
            for kind, n in result.applied_by_type.items():
                metrics.EVENTS_PROCESSED.labels(kind).inc(n)
            for code, n in result.dead_by_reason.items():
                metrics.DEAD_LETTERS.labels(code).inc(n)
            if result.duplicates:
                metrics.EVENTS_DUPLICATE.inc(result.duplicates)
            for event in events:
                metrics.EVENT_LATENCY.observe(max(0.0, done - event.message.timestamp))
            metrics.BATCH_SECONDS.observe(done - started)
            metrics.BATCH_SIZE.observe(len(events))

    metrics.init_label_values()

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

    @app.page("/profiles/{user_id}")
    @app.table_route(table=profiles, match_info="user_id")
    async def profile_view(web, request, user_id: str):
        """The profile of one user as JSON, 404 if the user was never seen."""
        stored = profiles.get(user_id.encode())
        if stored is None:
            return web.json({"error": f"unknown user {user_id!r}"}, status=404)
        return web.json(UserProfile.restore(stored).view())

    add_metrics_page(app)

    context.topics.update(events=events_topic, deadletter=deadletter_topic)
    context.tables.update(profiles=profiles, popularity=popularity)
    install_fraud_agent(app, context)  # fraud detection: suspicion table, fraud.flags (before windows: they read it)
    window_agent.install(app, context)  # window sink: Parquet training batches, announced on `batches`
    return app
