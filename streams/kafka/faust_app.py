"""What every advrec Faust app shares: broker options, the `/metrics` page, and how a worker process runs.

Every Faust app (the stream worker, the detector process and the scorer) is an `AdvrecApp` built
from these, so the broker's quirks, the consumer's fetch bounds and group timeouts are decided in
one place. Every app is at-least-once (Faust's default; `Settings.processing_guarantee`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import logging
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import faust
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.web.exceptions import WebError
from mode.utils.futures import maybe_async
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.contract.settings import Settings
from streams.kafka import eager_delivery
from streams.kafka.partitioner import partition_of
from streams.kafka.topics import ensure_topics

__all__ = [
    "AdvrecApp",
    "CONSUMER_FETCH_MAX_WAIT_MS",
    "table_view",
    "app_options",
    "add_metrics_page",
    "run_worker",
    "hold",
    "current",
    "release",
    "Changelogs",
    "processing",
    "ensure_changelogs",
]

log = logging.getLogger(__name__)


# Bytes per partition per fetch (Faust's default: 1 MB). A fetch is one round of the consumer's
# fetcher, which shares the loop with agents busy working through batches. At 1 MB the one
# partition of `fraud.events` (envelopes of up to 1,000 events, ~150 kB each) delivered ~40 of
# them a second, fewer than ingest sent: the detector fell 3 s behind in a 200k-event run
# (docs/broker.md). The total per fetch stays capped by aiokafka's fetch_max_bytes (50 MB).
CONSUMER_MAX_FETCH_BYTES = 16 * 1024 * 1024

# Bytes per produce batch of an app that writes thousands of changelog records per batch (and of
# the bulk writes on Tansu, whose producer is otherwise capped at one record per batch).
BULK_BATCH_BYTES = 256 * 1024

# How long the broker may hold a fetch that finds no new records (Faust hard-codes 1,500 ms).
# aiokafka keeps one fetch in flight per broker, and leaves out of it the partitions whose fetched
# records the app has not yet taken. While an agent works through a batch (the fetcher fetching on
# at each of its yields), the next fetch asks only for the quiet partitions (the assignor's leader topic,
# idle inputs), and the broker holds it this long before the busy partitions can be fetched
# again. A consumer fed 8,000 records/s that takes nothing 0.3 s of every 0.5 s: p99 lag 1.6-1.8 s
# at 1,500 ms, 0.31-0.34 s at 100 ms (benchmarks/fetch_wait.py; docs/broker.md, twelfth session).
# The cost: an idle consumer asks the broker ten times a second instead of once in 1.5 s.
CONSUMER_FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by aiokafka's fetcher when the consumer starts
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms
        consumer._fetch_min_bytes = self.app.fetch_min_bytes
        return consumer


class _InlineConsumerThread(_ConsumerThread):
    """aiokafka's consumer on the app's own event loop: Faust's consumer "thread" without a thread.

    Faust runs the consumer in a thread of its own so that heartbeats go on while an agent blocks
    the loop; advrec's agents never block it for long (they yield between slices and flush
    steps). The thread costs every fetch a hand-over each way (`call_soon_threadsafe`: a write to
    the other loop's self-pipe and a wake-up) and the two threads' turns at the GIL.
    """

    def __init__(self, consumer: Any, *, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(consumer, loop=loop, thread_loop=loop, **kwargs)

    async def start(self) -> None:
        self._thread_started.set()
        await self._default_start()
        await self.on_thread_started()

    async def stop(self) -> None:
        if self._started.is_set() and not self._stopped.is_set():
            self._stopped.set()
            await self.on_stop()
            await self.on_thread_stop()
            await self._default_stop_children()
            await self._default_stop_futures()
            await self._default_stop_exit_stacks()
            self._shutdown.set()
            await self.on_shutdown()

    async def call_thread(self, fun: Any, *args: Any, **kwargs: Any) -> Any:
        return await maybe_async(fun(*args, **kwargs))  # as the thread's method queue runs it

    async def cast_thread(self, fun: Any, *args: Any, **kwargs: Any) -> None:
        await maybe_async(fun(*args, **kwargs))


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        if self.app.consumer_thread:
            return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)
        return _InlineConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class AdvrecApp(faust.App):
    """A Faust app whose consumer fetches with advrec's bounds, not Faust's hard-coded ones.

    `fetch_max_wait_ms`: how long the broker may hold a fetch that finds nothing new;
    `fetch_min_bytes`: how much it waits for (1: it answers as soon as anything is there).
    Set them before the app starts (the scorer sets its own). `consumer_thread`: the consumer in
    a thread of its own (Faust's way) rather than on the app's loop (`_InlineConsumerThread`).
    """

    fetch_max_wait_ms: int = CONSUMER_FETCH_MAX_WAIT_MS
    fetch_min_bytes: int = 1
    consumer_thread: bool = False

    def __init__(self, *args: Any, consumer_thread: bool = False, **kwargs: Any) -> None:
        self.consumer_thread = consumer_thread  # before Faust builds the consumer (at start)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def app_options(
    settings: Settings,
    bootstrap: str,
    tansu_workarounds: bool,
    web_port: int,
    datadir: str,
    tables: bool = True,
    producer_linger_s: float = 0.0,
) -> dict[str, Any]:
    """Keyword arguments of `AdvrecApp` for an advrec process against `bootstrap` (host:port[,...]).

    `producer_linger_s`: how long the producer waits to fill a batch. 0 (Faust's default) sends
    at once, the scorer's need; a worker that writes thousands of changelog records per batch
    wants fewer, fuller produce requests (with 10 ms and 256 kB batches, the produce path's share
    of the worker's CPU fell from 9.5 % to 4 %, benchmarks/ingest.py under py-spy).
    """
    quirks: dict[str, Any] = dict(
        # A crashed member holds its partitions until its session times out (Faust's default: 60 s).
        broker_session_timeout=settings.group_session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.group_session_timeout_s / 4),
        consumer_max_fetch_size=CONSUMER_MAX_FETCH_BYTES,
    )
    if producer_linger_s:
        quirks.update(producer_linger=producer_linger_s, producer_max_batch_size=BULK_BATCH_BYTES)
    if tansu_workarounds:
        # Tansu's group join waits half the session timeout: keep it short.
        quirks.update(broker_session_timeout=6, broker_heartbeat_interval=1, broker_rebalance_timeout=6)
        if tables:
            # Tansu reports a partition's end offset as its last *batch's* base offset + 1, so Faust
            # would stop changelog recovery short: one record per batch keeps end offsets exact for
            # Faust's own table sends (the bulk writes end each write with a one-record batch
            # instead: `Changelogs`). An app without tables skips it: it caps sends at one round trip each.
            quirks["producer_max_batch_size"] = 1
    return dict(
        broker=",".join(f"kafka://{host}" for host in bootstrap.split(",")),
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=True,
        web_bind=settings.web_bind,
        web_host=settings.web_host or socket.gethostname(),
        web_port=web_port,
        datadir=datadir,
        consumer_thread=settings.consumer_thread,
        **quirks,
    )


def table_view(app: faust.App, path: str, table, **route):
    """`app.page(path)` over `app.table_route(table, **route)`, answering 503 while a rebalance moves the table.

    While partitions move (a worker joins, dies or restarts), Faust's router can fail to find the
    key's owner and the request would end in a bare 500; the caller should retry, so say that.
    """

    def decorate(handler):
        routed = app.table_route(table=table, **route)(handler)

        @functools.wraps(handler)
        async def guarded(web, request, *args, **kwargs):
            try:
                return await routed(web, request, *args, **kwargs)
            except WebError:  # an HTTP answer of Faust's web layer: as it is
                raise
            except Exception as exc:  # noqa: BLE001 - the router's errors have no common type
                log.warning("%s: %s while the table is moving: 503", path, exc, exc_info=True)
                return web.json({"error": f"{type(exc).__name__} while {table.name} is moving; retry"}, status=503)

        return app.page(path)(guarded)

    return decorate


def add_metrics_page(app: faust.App) -> None:
    """Serve this process's Prometheus metrics at `/metrics`."""

    @app.page("/metrics")
    async def metrics_view(web, request):
        """Prometheus exposition of this process's metrics."""
        # aiohttp refuses a charset inside content_type; the exposition format is ASCII anyway.
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.replace("; charset=utf-8", ""))


# The cyclic garbage collector's thresholds for a long-running stream process (Python's: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def collect_garbage_less_often() -> None:
    """Freeze what start-up built and collect cycles less often, for a process that holds much state.

    A worker holds millions of long-lived objects (profiles, item statistics, the detector's state)
    and allocates fast, so with Python's default thresholds the collector ran often and each
    full pass walked all of them (under py-spy, as time of whatever code was allocating). With
    these, the worker's CPU per event on envelopes fell by a fifth (41.6 → 33.1 µs,
    benchmarks/ingest.py's workload under py-spy). Our state holds no reference cycles, so
    reference counting frees it; the collector is only for the rare cycle, and finds it later.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def ensure_changelogs(app: faust.App, bootstrap: str, replication_factor: int) -> None:
    """Create every table's changelog topic (compacted) before the app joins its group.

    Faust creates them itself while it starts, concurrently with its first group join, and its
    assignor ignores a topic not yet in the broker's metadata: the table then has no active
    partition until the next rebalance, and its views answer "Service unavailable" (measured: the
    fraud view of a lone fresh worker in 1 of 8 runs of `test_fraud_stream`, "Ignoring missing
    topic" for both detector changelogs in its log).
    """
    by_partitions: dict[int, list[str]] = {}
    for table in app.tables.values():
        partitions = table.partitions or app.conf.topic_partitions
        by_partitions.setdefault(partitions, []).append(table.changelog_topic.get_topic_name())
    for partitions, names in by_partitions.items():  # returns once the broker's metadata lists them
        ensure_topics(bootstrap, names, partitions, replication_factor, compact=True)


def run_worker(app: faust.App, loglevel: str, ready: str = "") -> None:
    """Run `app` in this process until it is stopped (SIGTERM/SIGINT), as `faust worker` would.

    `ready` is printed as one line once the app has started (subscribed, tables recovered).
    """

    class Worker(faust.Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # Faust's spinner writes terminal escapes (and "OK ^" into logs): our ready line says it.
            self.spinner = None

        def on_setup_root_logger(self, logger, level: int) -> None:
            # mode leaves the root logger at DEBUG and filters in the handler, so every debug
            # call in aiokafka/faust builds a LogRecord: ~8% of the worker's CPU.
            super().on_setup_root_logger(logger, level)
            logger.setLevel(level)
            # Faust warns "producer buffer full" on every send while the producer catches up: under
            # a fast replay that floods the log with a condition that only means "back-pressure".
            logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)

        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            collect_garbage_less_often()
            if ready:  # the real stdout: Faust redirects sys.stdout into its logger at WARNING level
                print(ready, file=sys.__stdout__, flush=True)

    Worker(app, loglevel=loglevel.upper(), quiet=True).execute_from_commandline()


def hold(events) -> None:
    """Keep the events unacknowledged past the end of the agent body that took them.

    Faust's `take_events` acknowledges its buffer when the body returns *or raises*; one more
    reference per message makes that acknowledgement not the last, so nothing is committed until
    `release`. A batch whose body fails is therefore never committed: it is read again after a
    restart or a rebalance (every consumer downstream is idempotent by offset).
    """
    for event in events:
        event.message.incref()


def current(app: faust.App, events: list) -> list:
    """The events of the consumer's present generation; the others are held for good.

    Faust drops a message of an earlier generation (or one read while a rebalance is under way)
    when its stream reads it, but `take_events` hands out a buffer it filled before a rebalance
    after it, and an agent may wait for its lock across one. Such events belong to partitions
    revoked since, and read again from their committed offset by whoever owns them now (this
    process too). Folding them first would put their offsets ahead of the ones read again, which
    every consumer here then skips as already applied: the window sink lost the envelopes of the
    windows it had open (tests/integration/worker/test_windows_process.py, 4 of 20 runs).
    Acknowledging them could commit past events not yet processed. So they are never
    acknowledged (held, never released), and their partition's owner reads them again.
    """
    generation, active = app.consumer_generation_id, app.flow_control.is_active()
    fresh, stale = [], []
    for event in events:
        (fresh if active and event.message.generation_id == generation else stale).append(event)
    if stale:
        hold(stale)  # never released
        log.info("skipped %d events fetched before a rebalance: their partitions' owners read them again", len(stale))
    return fresh


async def release(events, changelogs: Changelogs) -> None:
    """Acknowledge held events once every table write made so far is on the broker.

    Their offsets may be committed from then on; the state they produced is already durable.
    """
    await changelogs.delivered()
    for event in events:
        event.ack()


class Changelogs:
    """The worker's tables as seen by the agents that write them: kept in the producer's metadata,
    written in bulk, and each write followed until the broker has it.

    Why follow writes: a table write only queues its changelog record in Faust's producer buffer,
    and an agent's batch is committed after it. Faust flushes that buffer before it commits, but
    its flush gives up after one 0.1 s wait and misses the record its sender task has taken off
    the queue and not yet handed to aiokafka. A kill -9 right after such a commit loses the record:
    the restored profile is the older one and the batch's events are never read again (measured:
    `test_fraud_stream`'s kill -9 test lost 9 events of one profile in 2 of 11 runs). So `release`
    waits for the records themselves (`delivered`), not for Faust's flush.

    `write` puts a batch's rows into the table's store and sends their changelog records straight
    to aiokafka, one produce batch per partition, instead of one Faust send per row (a future, a
    buffer hop, two callbacks and sensors each). `send_records` does the same for the records an
    agent sends to other topics (dead letters, fraud flags), followed until delivered like them.

    `single_record_tail` (Tansu): Tansu reports a partition's end offset as its last *batch's*
    base offset + 1, so after a batch of many records Faust's recovery would stop short of them.
    Each write then ends, per partition, with one more batch holding one record: its last row
    again (the same key and value, harmless to every reader), so the end offset is exact once the
    write is delivered, which is before its input is acknowledged. (Faust's own table sends, of the
    tables not written here, get one record per batch on Tansu: `app_options`.)
    """

    def __init__(self, tables, single_record_tail: bool = False) -> None:
        self.tables = list(tables)
        self.single_record_tail = single_record_tail
        self.undelivered: set[asyncio.Future] = set()
        self._last_send: dict[tuple[str, int], asyncio.Future] = {}  # per partition written
        self._unkeyed_turn = itertools.count()  # the partition of `send_records`' unkeyed records
        for table in self.tables:
            self._follow(table)

    def _follow(self, table) -> None:
        send_changelog = table.send_changelog  # every write of a Table goes through it

        def following(*args: Any, **kwargs: Any):
            sent = send_changelog(*args, **kwargs)
            self._undelivered(sent)
            return sent

        table.send_changelog = following

    def _undelivered(self, sent: asyncio.Future) -> None:
        self.undelivered.add(sent)
        sent.add_done_callback(self._delivered_one)

    def _delivered_one(self, sent: asyncio.Future) -> None:
        # A failed record stays until `delivered` raises it: dropped here, a failure that came
        # before the next `release` would go unseen and that batch would be acknowledged.
        if not sent.cancelled() and sent.exception() is None:
            self.undelivered.discard(sent)

    async def write(self, app: faust.App, table, rows: dict[bytes, bytes]) -> None:
        """`table[key] = value` for every row of a table of raw bytes, in bulk when `bulk`.

        The rows land on the partitions Faust's own writes would pick (the producer's default
        partitioner over the changelog's partitions), with the same raw bytes, so recovery and the
        changelog's readers cannot tell the two apart. The store is updated at once; the records
        leave in the background, in order per partition, and `delivered` waits for them.
        """
        if not rows:
            return
        if (table.key_serializer, table.value_serializer) != ("raw", "raw"):
            raise TypeError(f"bulk writes need a table of raw bytes; {table.name} is not")
        store = table.data
        for key, value in rows.items():
            store[key] = value
        await self._send(app, table.changelog_topic.get_topic_name(), rows.items(), self.single_record_tail)

    async def send_records(self, app: faust.App, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
        """Send `(key, value)` records to a topic that is not a changelog, in bulk and followed like
        a table's writes (`delivered` waits for them too). A keyed record goes where Faust's own
        send would put it; the unkeyed ones of a call go together to the next partition in turn.
        """
        if records:
            # On Tansu, one record per batch, as Faust's own sends there (`app_options`): a reader
            # that stops at the end offset sees them all, and no record is written twice.
            await self._send(app, topic, records, one_record_batches=self.single_record_tail)

    async def _send(
        self, app: faust.App, topic: str, records, single_record_tail: bool = False, one_record_batches: bool = False
    ) -> None:
        producer = app.producer._ensure_producer()
        new_batch = self._batch_builder(producer)
        partitions = sorted(await producer.partitions_for(topic))
        unkeyed = partitions[next(self._unkeyed_turn) % len(partitions)]
        batches: dict[int, list] = {}
        last_row: dict[int, tuple[bytes | None, bytes]] = {}
        for key, value in records:
            partition = unkeyed if key is None else partitions[partition_of(key, len(partitions))]
            built = batches.setdefault(partition, [])
            if not built or one_record_batches:
                built.append(new_batch())
            while built[-1].append(key=key, value=value, timestamp=None) is None:  # full (and closed)
                built.append(new_batch())
            if one_record_batches:
                built[-1].close()
            last_row[partition] = (key, value)
        for partition, built in batches.items():
            built[-1].close()  # complete: no linger
            if single_record_tail:
                tail = new_batch()
                tail.append(key=last_row[partition][0], value=last_row[partition][1], timestamp=None)
                tail.close()
                built.append(tail)
            tp = (topic, partition)
            after = self._last_send.get(tp)
            sending = asyncio.ensure_future(self._send_in_order(producer, topic, partition, built, after))
            self._last_send[tp] = sending
            self._undelivered(sending)

    def _batch_builder(self, producer):
        """How this write's produce batches are made: the producer's own, except on Tansu, whose
        producer is capped at one record per batch (`app_options`): full-size batches there."""
        if not self.single_record_tail:
            return producer.create_batch
        return functools.partial(BatchBuilder, BULK_BATCH_BYTES, 0, is_transactional=False)

    @staticmethod
    async def _send_in_order(producer, topic: str, partition: int, batches: list, after) -> None:
        """Send `batches` to one partition once the write before (`after`) has left: a key's last
        value must be its changelog's last record. Returns when all of them are acknowledged."""
        if after is not None:
            await asyncio.shield(after)
        acknowledged = [await producer.send_batch(batch, topic, partition=partition) for batch in batches]
        await asyncio.gather(*acknowledged)

    async def delivered(self) -> None:
        """Wait until every record written (`write`) or sent (`send_records`) so far is acknowledged
        (raises if one failed)."""
        if self.undelivered:
            await asyncio.gather(*list(self.undelivered))

    async def track(self, app: faust.App) -> None:
        """Make the producer track every table's changelog topic in its metadata.

        Tables written with `use_partitioner=True` hash keys with the producer's metadata (faust's
        `key_partition` reads it synchronously). aiokafka refreshes metadata only for the topics it
        tracks, and a topic seen in its first all-topics fetch is not tracked: as soon as it sends
        anywhere, Apache Kafka's answers drop the other changelogs and the next table write fails
        with a TypeError. Tracking them explicitly keeps them in every refresh. Once done it costs
        next to nothing, so agents call it for every batch.
        """
        producer = app.producer._ensure_producer()
        for table in self.tables:
            name = table.changelog_topic.get_topic_name()
            await producer.client.add_topic(name)
            await producer.partitions_for(name)


@contextlib.asynccontextmanager
async def processing(app: faust.App, events, changelogs: Changelogs, agent: str) -> AsyncIterator[list]:
    """One batch of an agent that acknowledges it when its body is done (`async with processing(...) as events`).

    The body gets the batch's events of the present generation (`current`). They are held (`hold`)
    and the changelogs tracked (`Changelogs.track`) before the body runs; they are released
    (`release`: once their table writes are on the broker) when the body returns. Bad inputs are
    the body's to dead-letter: an exception that reaches here is the broker, the disk or a bug, so
    the worker stops without committing the batch, which is read again on restart.
    """
    events = current(app, events)
    hold(events)
    try:
        await changelogs.track(app)
        yield events
        await release(events, changelogs)
    except Exception as exc:
        log.exception("%s: batch of %d not processed; stopping the worker without committing it", agent, len(events))
        await app.crash(exc)
        raise


def _seek_every_partition_to_committed() -> None:
    """Make aiokafka's `seek_to_committed` seek every partition, also those committed at 0 or never.

    Faust calls it after every rebalance ("Seek stream partitions to committed offsets") to throw
    away what was fetched but not processed. aiokafka (0.14) seeks only partitions whose committed
    offset is above 0, so a partition never committed keeps the position of records fetched and then
    discarded in the rebalance: the new owner skips them for good. Measured here: after a kill -9
    of a worker that had not committed yet, 2 to 4 of 4 partitions lost every event in about one
    run in three (tests/integration/worker/test_scale_out.py); with this, none in 10 runs in a row.
    Seeking to 0 is right for both: the first record, or (if retention removed it) an out-of-range
    offset that the consumer resets with its `auto_offset_reset` policy (earliest).
    """
    from aiokafka import AIOKafkaConsumer

    original = AIOKafkaConsumer.seek_to_committed
    if getattr(original, "advrec_patched", False):
        return

    async def seek_to_committed(self, *partitions):
        committed = await original(self, *partitions)
        for tp, offset in committed.items():
            if not offset:
                self._fetcher.seek_to(tp, 0)
        return committed

    seek_to_committed.advrec_patched = True
    AIOKafkaConsumer.seek_to_committed = seek_to_committed


def _hold_the_flow_until_streams_are_sought() -> None:
    """Make Faust's recovery keep every record from the streams until their partitions are sought.

    Faust 0.15.3 ends recovery (`Recovery.on_recovery_completed`, the one path that ends it) by
    resuming the input partitions, seeking them to their committed offsets (a broker round trip)
    and only then resuming the flow, and resuming the flow clears every stream queue. Its consumer
    flow is still running from the changelog restore, so records fetched after the seek reach the
    queues, are marked read, and are then cleared with them: never delivered, never fetched again.
    The first records after the committed offset were lost, or arrived after later ones once a
    later seek brought them back (and were then skipped as already applied). Measured here: the
    fraud detector in its own process, restarted after a kill -9, never folded the envelope at its
    committed offset (174 events of 2 users, `test_fraud_stream`, broker log segments and
    `__consumer_offsets`); a CI run's worker took partition 0's offsets 1723-1803 before 0-1803
    (212 events of 15 users never applied). Stopping the consumer flow first keeps the queues
    empty until the seek is done; Faust's own resume at the end starts the flow again.
    """
    from faust.tables.recovery import Recovery

    original = Recovery.on_recovery_completed
    if getattr(original, "advrec_patched", False):
        return

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.app.consumer.stop_flow()
        await original(self, generation_id)

    on_recovery_completed.advrec_patched = True
    Recovery.on_recovery_completed = on_recovery_completed


# The longest Faust's consumer waits for records from the partitions it is fetching (Faust: 1 s).
RECORDS_WAIT_S = 0.1


def _wait_briefly_for_records() -> None:
    """Make Faust's consumer wait at most `RECORDS_WAIT_S` for new records, not 1 s.

    When a stream's buffer fills, Faust pauses its partitions and fetches from the others only; its
    drain loop then waits up to 1 s (`getmany(timeout=1.0)`) for records from partitions that have
    none (the assignor's topic, quiet inputs), and only after that sees that the buffer has room
    and the paused partitions are active again. A do-nothing agent fills its buffer (10,000
    records) about once a second here, so it ran at 12-13k records/s with both its threads idle
    most of the time. Records that arrive still end the wait at once; a shorter wait costs an idle
    consumer ten wake-ups a second.
    """
    from faust.transport.consumer import Consumer

    original = Consumer._wait_next_records
    if getattr(original, "advrec_patched", False):
        return

    async def _wait_next_records(self, timeout: float):
        return await original(self, min(timeout, RECORDS_WAIT_S))

    _wait_next_records.advrec_patched = True
    Consumer._wait_next_records = _wait_next_records


_seek_every_partition_to_committed()
_hold_the_flow_until_streams_are_sought()
eager_delivery.install()
_wait_briefly_for_records()
