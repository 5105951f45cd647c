"""The Faust application of the stream worker: its topics and tables, wired explicitly to its agents.

`create_app` is called by the worker's composition root with the frozen Settings and the broker.
The data path (docs/architecture.md):

    events ─► ingest ─┬─► events.deadletter                 (one verdict per input)
                      ├─► profiles table                    (user-keyed, exact)
                      ├─► events.valid  ─► window sink ─►  Parquet files ─► batches
                      ├─► fraud.events  ─► fraud detector ─► suspicion table, fraud.flags
                      └─► items.deltas  ─► item table       (item-keyed, exact)
    catalog ─► catalog agent ─┬─► catalog table             (item-keyed; its changelog feeds the trainer)
                              └─► events.deadletter         (bad entries, with a reason code)

Only ingest reads the raw input; everything downstream gets validated events in envelopes, once
per batch. Every table and topic of the worker is made here and handed to the agents that use it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust

from streams.contract.settings import Settings
from streams.kafka.faust_app import Changelogs, add_metrics_page, app_options, processing_guarantee
from streams.worker import catalog_agent, fraud_agent, ingest_agent, item_agent, metrics, window_agent
from streams.worker.validation import ValidationLimits

__all__ = ["create_app", "WorkerTopology"]

log = logging.getLogger(__name__)

# A batch writes thousands of changelog records: 10 ms lets them leave in full produce requests
# (a latency nobody downstream notices: windows close on seconds, flags on batches).
PRODUCER_LINGER_S = 0.01


@dataclass
class WorkerTopology:
    """The worker's topics and tables, by role."""

    events: Any
    deadletter: Any
    valid: Any
    fraud_events: Any
    item_deltas: Any
    batches: Any
    flags: Any
    labels: Any
    catalog_entries: Any
    profiles: Any
    items: Any
    catalog: Any
    window_marks: Any
    suspicion: Any
    detector_state: Any
    changelogs: Changelogs  # all the tables above: an agent acknowledges input once its writes are delivered


def build_topology(app: faust.App, settings: Settings, bulk_writes: bool = False) -> WorkerTopology:
    """Declare every topic and table of the worker (`bulk_writes`: see `Changelogs`)."""
    partitions = settings.topic_partitions

    def raw_topic(name: str, n: int = partitions):
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", partitions=n
        )

    def table(name: str, n: int = partitions, **values):
        # Keys are raw ids hashed with the producer's default partitioner, so a user's profile lives
        # on the partition of the user's events (producers key events by user_id).
        return app.Table(name, default=None, key_type=bytes, partitions=n, use_partitioner=True, **values)

    tables = dict(
        # JSON bytes encoded by the agents (msgspec), not by Faust's codec: the hottest tables,
        # written in bulk (`Changelogs.write`), the same bytes on the changelog for its readers.
        profiles=table("profiles", value_type=bytes),
        items=table("items", value_type=bytes),
        catalog=table("catalog"),
        window_marks=table("window-marks"),
        suspicion=table("suspicion", 1),
        detector_state=table("fraud-detector", 1),
    )
    return WorkerTopology(
        events=raw_topic(settings.events_topic),
        deadletter=raw_topic(settings.deadletter_topic),
        valid=raw_topic(settings.valid_topic),
        # One partition: one fraud detector sees every event, whatever the number of workers.
        fraud_events=raw_topic(settings.fraud_events_topic, 1),
        item_deltas=raw_topic(settings.item_deltas_topic),
        batches=raw_topic(settings.batches_topic),
        flags=raw_topic(settings.fraud_flags_topic),
        labels=raw_topic(settings.fraud_labels_topic),
        catalog_entries=raw_topic(settings.catalog_topic),
        **tables,
        changelogs=Changelogs(tables.values(), bulk=bulk_writes),
    )


def create_app(settings: Settings, bootstrap: str, tansu_workarounds: bool) -> faust.App:
    """Build the worker's Faust app against `bootstrap` (host:port[,...])."""
    guarantee = processing_guarantee(settings, tansu_workarounds)
    app = faust.App(
        settings.app_id,
        **app_options(
            settings,
            bootstrap,
            tansu_workarounds,
            settings.web_port,
            str(settings.data_dir / "faust"),
            guarantee=guarantee,
            producer_linger_s=PRODUCER_LINGER_S,
        ),
        stream_buffer_maxsize=max(4_096, 2 * settings.batch_max_events),
        broker_max_poll_records=settings.batch_max_events,
        # Held (not yet acknowledged) events are redelivered to whoever owns their partition next;
        # a rebalance must not wait for them.
        stream_wait_empty=False,
    )
    topology = build_topology(app, settings, bulk_writes=guarantee == "at_least_once" and not tansu_workarounds)
    limits = ValidationLimits.from_settings(settings)
    metrics.init_label_values()
    flags_view = window_agent.FlagView()
    ingest_agent.install(app, settings, topology, limits)
    item_agent.install(app, settings, topology)
    catalog_agent.install(app, settings, topology)
    window_agent.install(app, settings, topology, bootstrap, flags_view)
    if settings.fraud_enabled:
        fraud_agent.install(app, settings, topology, bootstrap)
    add_metrics_page(app)

    return app
