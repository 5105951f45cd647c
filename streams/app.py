"""The Faust application of the stream worker: topics, tables, the ingest agent and HTTP views.

`create_app` is called by the worker's composition root with the frozen Settings and the broker
to use. Agents stay short: batch in → `ingest_batch` (pure) → writes and sends out.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams import metrics, windows
from streams.fraud_agent import install as install_fraud_agent
from streams.ingest import BatchResult, RawRecord, ingest_batch
from streams.profiles import ProfileConfig, UserProfile
from streams.records import DeadLetter
from streams.settings import Settings
from streams.validation import ValidationLimits

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


def processing_guarantee(settings: Settings, tansu_workarounds: bool) -> str:
    """Faust's processing guarantee: as configured, but at-least-once on Tansu (it has no transactions)."""
    if settings.processing_guarantee not in ("at_least_once", "exactly_once"):
        raise ValueError(f"processing_guarantee must be at_least_once or exactly_once, not {settings.processing_guarantee!r}")
    return "at_least_once" if tansu_workarounds else settings.processing_guarantee


def create_app(settings: Settings, bootstrap: str, tansu_workarounds: bool) -> faust.App:
    """Build the worker's Faust app against `bootstrap` (host:port[,...])."""
    # A crashed worker holds its partitions until its session times out (Faust's default: 60 s).
    broker_quirks = dict(broker_session_timeout=settings.group_session_timeout_s,
                         broker_heartbeat_interval=max(1.0, settings.group_session_timeout_s / 4))
    if tansu_workarounds:
        # Tansu 0.6 reports a partition's end offset as the last *batch's* base offset + 1,
        # so Faust would stop changelog recovery short of the newest updates: one record per
        # batch keeps end offsets exact. Its group join waits half the session timeout.
        broker_quirks = dict(producer_max_batch_size=1, broker_session_timeout=6,
                             broker_heartbeat_interval=1, broker_rebalance_timeout=6)
    app = faust.App(
        settings.app_id,
        broker=",".join(f"kafka://{host}" for host in bootstrap.split(",")),
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=processing_guarantee(settings, tansu_workarounds),
        web_enabled=True,
        web_bind=settings.web_bind,
        web_host=settings.web_host or socket.gethostname(),
        web_port=settings.web_port,
        datadir=str(settings.data_dir / "faust"),
        stream_buffer_maxsize=max(4_096, 2 * settings.batch_max_events),
        broker_max_poll_records=settings.batch_max_events,
        **broker_quirks,
    )
    limits = ValidationLimits.from_settings(settings)
    context = WorkerContext(settings=settings, limits=limits, app=app)
    profile_config = ProfileConfig(recent_items=settings.recent_items, rate_half_life_s=settings.rate_half_life_s)

    events_topic = app.topic(settings.events_topic, key_type=bytes, value_type=bytes,
                             key_serializer="raw", value_serializer="raw",
                             partitions=settings.topic_partitions)
    deadletter_topic = app.topic(settings.deadletter_topic, value_type=DeadLetter,
                                 partitions=settings.topic_partitions)
    # Keys are raw user/item ids and written with the default partitioner, so a profile's
    # changelog partition equals its user's `events` partition when producers key by user_id.
    # (key_type=bytes selects the raw key codec; values are JSON.)
    profiles = app.Table("profiles", default=None, key_type=bytes, partitions=settings.topic_partitions,
                         use_partitioner=True)
    popularity = app.Table("item-popularity", default=int, key_type=bytes,
                           partitions=settings.topic_partitions, use_partitioner=True)

    @app.agent(events_topic)
    async def ingest(stream):
        """Validate, dead-letter and fold events into profiles, one batch at a time."""
        async for events in stream.take_events(settings.batch_max_events, within=settings.batch_max_seconds):
            await context.partitioner_ready()
            started = time.time()
            records = [RawRecord(e.value, e.message.topic, e.message.partition, e.message.offset)
                       for e in events]
            result = ingest_batch(records, lambda user: profiles.get(user.encode()),
                                  lambda item: popularity.get(item.encode(), 0), limits, profile_config, started)
            for user_id, profile in result.profiles.items():
                profiles[user_id.encode()] = profile.to_dict()
            for item_id, count in result.popularity.items():
                popularity[item_id.encode()] = count
            for letter in result.dead_letters:
                await deadletter_topic.send(key=None, value=letter)
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
        assigned = {(tp.topic, str(tp.partition)): tp for tp in app.consumer.assignment()
                    if tp.topic == settings.events_topic}
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
        return web.json(UserProfile.from_dict(stored).view())

    @app.page("/metrics")
    async def metrics_view(web, request):
        """Prometheus exposition of this process's metrics."""
        # aiohttp refuses a charset inside content_type; the exposition format is ASCII anyway.
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.replace("; charset=utf-8", ""))

    context.topics.update(events=events_topic, deadletter=deadletter_topic)
    context.tables.update(profiles=profiles, popularity=popularity)
    app.advrec = context  # the worker's parts, for the modules that install more agents
    install_fraud_agent(app)  # fraud detection: suspicion table, fraud.flags (before windows: they read it)
    windows.install(app)  # window sink: Parquet training batches, announced on `batches`
    return app
