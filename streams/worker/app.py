"""The Faust application of the stream worker: its topics and tables, wired explicitly to its agents.

`create_app` is called by the worker's composition root with the frozen Settings and the broker.
The data path (docs/architecture.md):

    events ─► ingest ─┬─► events.deadletter                 (one verdict per input)
                      ├─► profiles table                    (user-keyed, exact)
                      ├─► events.valid  ─► window sink ─►  Parquet files ─► batches, window-marks table
                      ├─► fraud.events  ─► fraud detector ─► suspicion table, fraud.flags
                      └─► items.deltas  ─► item table       (item-keyed, exact)
    catalog ─► catalog agent ─┬─► catalog table             (item-keyed; its changelog feeds the trainer)
                              └─► events.deadletter         (bad entries, with a reason code)

Only ingest reads the raw input; everything downstream gets validated events in envelopes, once
per batch. Every table and topic of the worker is made here and handed to the agents that use it.
Two stages can run in processes of their own, each its own Faust app, group and tables: the fraud
detector (`create_detector_app`, with `fraud_in_worker` off) and the window sink
(`create_windows_app`, with `windows_in_worker` off); the workers then only send them their topic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust

from streams.contract.settings import Settings
from streams.kafka.faust_app import AdvrecApp, Changelogs, add_metrics_page, app_options
from streams.worker import catalog_agent, fraud_agent, ingest_agent, item_agent, metrics, window_agent
from streams.worker.validation import ValidationLimits

__all__ = [
    "create_app",
    "create_detector_app",
    "create_windows_app",
    "WorkerTopology",
    "DetectorTopology",
    "WindowsTopology",
]

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
    window_marks: Any  # None where the window sink runs in its own process (`windows_in_worker` off)
    suspicion: Any  # None where the detector runs in its own process (`fraud_in_worker` off)
    detector_state: Any
    changelogs: Changelogs  # all the tables above: an agent acknowledges input once its writes are delivered


def _raw_topic(app: faust.App, name: str, partitions: int, buffer_records: int | None = None):
    # `buffer_records`: the stream buffer of the agent reading it (None: the app's `stream_buffer_maxsize`).
    # Built as `app.topic` builds it, which drops its `maxsize` argument (Faust 0.15.3).
    return app.conf.Topic(
        app,
        topics=[name],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        maxsize=buffer_records,
    )


def _table(app: faust.App, name: str, partitions: int, **values):
    # Keys are raw ids hashed with the producer's default partitioner, so a user's profile lives
    # on the partition of the user's events (producers key events by user_id).
    return app.Table(name, default=None, key_type=bytes, partitions=partitions, use_partitioner=True, **values)


def _detector_topics(app: faust.App, settings: Settings) -> dict[str, Any]:
    """The fraud detector's input and output topics, wherever it runs."""
    return dict(
        # One partition: one fraud detector sees every event, whatever the number of workers.
        fraud_events=_raw_topic(app, settings.fraud_events_topic, 1),
        flags=_raw_topic(app, settings.fraud_flags_topic, settings.topic_partitions),
    )


def _detector_tables(app: faust.App) -> dict[str, Any]:
    """The fraud detector's tables, declared only in the app that runs it (each has one partition)."""
    # JSON bytes encoded by the agent (msgspec) and written in bulk, like the profiles: a flush
    # rewrites thousands of verdicts, each a Faust codec call and a send through Faust when
    # written one by one (a fifth of the detector's CPU on envelopes, docs/broker.md).
    return dict(
        suspicion=_table(app, "suspicion", 1, value_type=bytes),
        detector_state=_table(app, "fraud-detector", 1, value_type=bytes),
    )


def _windows_tables(app: faust.App, settings: Settings) -> dict[str, Any]:
    """The window sink's table, declared only in the app that runs it: the last offset written per
    partition of `events.valid` (co-partitioned with it)."""
    return dict(window_marks=_table(app, "window-marks", settings.topic_partitions))


def build_topology(app: faust.App, settings: Settings, tansu_workarounds: bool = False) -> WorkerTopology:
    """Declare every topic and table of the worker (`tansu_workarounds`: its changelog writes end
    in a one-record batch, `Changelogs`).

    With `fraud_in_worker` off the detector's tables belong to `advrec detector`, with
    `windows_in_worker` off the window sink's to `advrec windows`: not declared here.
    """
    partitions = settings.topic_partitions
    tables = dict(
        # JSON bytes encoded by the agents (msgspec), not by Faust's codec: the hottest tables,
        # written in bulk (`Changelogs.write`), the same bytes on the changelog for its readers.
        profiles=_table(app, "profiles", partitions, value_type=bytes),
        items=_table(app, "items", partitions, value_type=bytes),
        catalog=_table(app, "catalog", partitions),
        **(_windows_tables(app, settings) if settings.windows_in_worker else {}),
    )
    detector_tables = _detector_tables(app) if settings.fraud_in_worker else {}
    return WorkerTopology(
        # A buffer of twice the batch (Faust pauses a full buffer's partitions) left the fetcher idle
        # while each batch was processed (single events, worker runs of benchmarks/ingest.py with the
        # capped wait for records: 12.4k events/s at two batches, 14.2k at four; docs/broker.md).
        events=_raw_topic(app, settings.events_topic, partitions, settings.events_buffer_records),
        deadletter=_raw_topic(app, settings.deadletter_topic, partitions),
        valid=_raw_topic(app, settings.valid_topic, partitions),
        item_deltas=_raw_topic(app, settings.item_deltas_topic, partitions),
        batches=_raw_topic(app, settings.batches_topic, partitions),
        labels=_raw_topic(app, settings.fraud_labels_topic, partitions),
        catalog_entries=_raw_topic(app, settings.catalog_topic, partitions),
        **_detector_topics(app, settings),
        profiles=tables["profiles"],
        items=tables["items"],
        catalog=tables["catalog"],
        window_marks=tables.get("window_marks"),
        suspicion=detector_tables.get("suspicion"),
        detector_state=detector_tables.get("detector_state"),
        changelogs=Changelogs([*tables.values(), *detector_tables.values()], single_record_tail=tansu_workarounds),
    )


@dataclass
class DetectorTopology:
    """What the fraud detector reads and writes when it runs in its own process (`create_detector_app`)."""

    fraud_events: Any
    flags: Any
    suspicion: Any
    detector_state: Any
    changelogs: Changelogs


def _faust_app(app_id: str, web_port: int, settings: Settings, bootstrap: str, tansu_workarounds: bool):
    """The Faust app of a worker or of the detector process."""
    app = AdvrecApp(
        app_id,
        **app_options(
            settings,
            bootstrap,
            tansu_workarounds,
            web_port,
            str(settings.data_dir / "faust"),
            producer_linger_s=PRODUCER_LINGER_S,
        ),
        stream_buffer_maxsize=max(4_096, 2 * settings.batch_max_events),
        broker_max_poll_records=settings.batch_max_events,
        # Held (not yet acknowledged) events are redelivered to whoever owns their partition next;
        # a rebalance must not wait for them.
        stream_wait_empty=False,
    )
    return app


def create_app(settings: Settings, bootstrap: str, tansu_workarounds: bool) -> faust.App:
    """Build the worker's Faust app against `bootstrap` (host:port[,...])."""
    app = _faust_app(settings.app_id, settings.web_port, settings, bootstrap, tansu_workarounds)
    topology = build_topology(app, settings, tansu_workarounds)
    limits = ValidationLimits.from_settings(settings)
    metrics.init_label_values()
    metrics.FRAUD_DETECTION_ON.set(1 if settings.fraud_enabled else 0)
    ingest_agent.install(app, settings, topology, limits)
    item_agent.install(app, settings, topology)
    catalog_agent.install(app, settings, topology)
    if settings.windows_in_worker:
        window_agent.install(app, settings, topology, bootstrap)
    if settings.fraud_enabled and settings.fraud_in_worker:
        fraud_agent.install(app, settings, topology, bootstrap)
    add_metrics_page(app)

    return app


def create_detector_app(settings: Settings, bootstrap: str, tansu_workarounds: bool) -> faust.App:
    """The fraud detector alone, as its own Faust app (`advrec detector`, with `fraud_in_worker` off).

    Its own app id (`<app id>-detector`), so its own consumer group and changelogs: the workers
    keep validating, writing profiles and windows, and sending `fraud.events`, which this process
    reads on a core of its own. It takes none of the workers' CPU and keeps the same verdicts:
    one detector still sees every event (`fraud.events` has one partition).
    """
    app = _faust_app(f"{settings.app_id}-detector", settings.detector_web_port, settings, bootstrap, tansu_workarounds)
    tables = _detector_tables(app)
    changelogs = Changelogs(tables.values(), single_record_tail=tansu_workarounds)
    topology = DetectorTopology(**_detector_topics(app, settings), **tables, changelogs=changelogs)
    fraud_agent.install(app, settings, topology, bootstrap)
    add_metrics_page(app)
    return app


@dataclass
class WindowsTopology:
    """What the window sink reads and writes when it runs in its own process (`create_windows_app`)."""

    valid: Any
    batches: Any
    window_marks: Any
    changelogs: Changelogs


def create_windows_app(settings: Settings, bootstrap: str, tansu_workarounds: bool) -> faust.App:
    """The window sink alone, as its own Faust app (`advrec windows`, with `windows_in_worker` off).

    Its own app id (`<app id>-windows`), so its own consumer group and `window-marks` changelog: the
    workers keep validating and sending `events.valid` (named after the workers' app id), which this
    process turns into Parquet files and `batches` announcements on a core of its own. Several of
    them split `events.valid`'s partitions like workers split `events`.
    """
    app = _faust_app(f"{settings.app_id}-windows", settings.windows_web_port, settings, bootstrap, tansu_workarounds)
    tables = _windows_tables(app, settings)
    partitions = settings.topic_partitions
    topology = WindowsTopology(
        valid=_raw_topic(app, settings.valid_topic, partitions),
        batches=_raw_topic(app, settings.batches_topic, partitions),
        **tables,
        changelogs=Changelogs(tables.values(), single_record_tail=tansu_workarounds),
    )
    window_agent.install(app, settings, topology, bootstrap)
    add_metrics_page(app)
    return app
