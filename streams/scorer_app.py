"""The scorer process: its own Faust app (`{app_id}-scorer`) that serves the MLflow champion.

Requests from `rec.requests` are taken in micro-batches, answered by `ScorerCore` (pure) and sent
to `recommendations`; bad ones go to `rec.requests.deadletter`. Seen items come from a read-only
tail of the worker's `profiles` changelog (and popularity from its `item-popularity` changelog),
read without a consumer group, so the scorer runs in a process of its own and never writes the
worker's tables. Models are loaded in a thread, fully, and swapped in by one assignment; a
promotion on `model.updates` or the periodic alias check triggers a load. MLflow being down or a
corrupt version never stops serving: the current model stays.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any, Callable

import click
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams import scorer_metrics as metrics
from streams.records import DeadLetter, Recommendation
from streams.scorer import Popularity, Rejected, ScorerCore, ServingModel, parse_request
from streams.settings import Settings
from streams.topics import partitions_of

__all__ = ["ChangelogView", "ModelWatcher", "ScorerApp", "create_scorer_app", "scorer"]

log = logging.getLogger(__name__)


class ChangelogView:
    """A read-only, group-less tail of the worker's profile and popularity changelog topics."""

    def __init__(self, bootstrap: str, profiles_topic: str, popularity_topic: str) -> None:
        self.bootstrap, self.profiles_topic, self.popularity_topic = bootstrap, profiles_topic, popularity_topic
        self.items: dict[str, frozenset[str]] = {}
        self.counts: dict[str, float] = {}
        self.records = 0
        self._popularity_dirty = False

    def seen(self, user_id: str) -> frozenset[str] | None:
        """Items in the user's profile, or None for a user without one."""
        return self.items.get(user_id)

    def apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """Fold one changelog record into the view (a None value deletes the key)."""
        if key is None:
            return
        name = key.decode("utf-8", "replace")
        try:
            data = json.loads(value) if value is not None else None
        except ValueError:
            return
        self.records += 1
        if topic == self.profiles_topic:
            if isinstance(data, dict):
                self.items[name] = frozenset(str(i) for i in data.get("items") or ())
            else:
                self.items.pop(name, None)
        else:
            if isinstance(data, (int, float)):
                self.counts[name] = float(data)
            else:
                self.counts.pop(name, None)
            self._popularity_dirty = True

    def popularity(self) -> Popularity | None:
        """The popularity ranking if it changed since the last call, else None."""
        if not self._popularity_dirty:
            return None
        self._popularity_dirty = False
        return Popularity.from_counts(self.counts)

    async def run(self, on_popularity: Callable[[Popularity], None], refresh_s: float = 5.0) -> None:
        """Tail both topics from the beginning, forever; re-checks for topics that do not exist yet."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", client_id="advrec-scorer-changelogs")
        await consumer.start()
        try:
            assigned: set[str] = set()
            last_check = last_popularity = 0.0
            while True:
                now = time.monotonic()
                if assigned != {self.profiles_topic, self.popularity_topic} and now - last_check > refresh_s:
                    last_check = now
                    partitions = {t: await partitions_of(consumer, t) for t in (self.profiles_topic, self.popularity_topic)}
                    wanted = {t for t, ps in partitions.items() if ps}
                    if wanted != assigned:
                        consumer.assign([TopicPartition(t, p) for t in wanted for p in partitions[t]])
                        assigned = wanted
                if not assigned:
                    await asyncio.sleep(1.0)
                    continue
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for tp, messages in batches.items():
                    for message in messages:
                        self.apply(tp.topic, message.key, message.value)
                if now - last_popularity > refresh_s:
                    last_popularity = now
                    ranking = self.popularity()
                    if ranking is not None:
                        on_popularity(ranking)
        finally:
            await consumer.stop()


class ModelWatcher:
    """Keeps `core.model` on the registry's champion: load in a thread, then swap; never half-loaded."""

    def __init__(self, core: ScorerCore, registry: Any) -> None:
        self.core, self.registry = core, registry
        self.refused: set[int] = set()
        self.wake = asyncio.Event()

    def load_if_changed(self) -> ServingModel | None:
        """(Blocking) the champion as a ServingModel if it differs from the served one, else None."""
        from registry.service import CorruptModelError, RegistryError

        current = self.core.model.version if self.core.model is not None else None
        try:
            version = self.registry.champion_version()
            if version is None or version == current or version in self.refused:
                return None
            model = self.registry.load_version(version)
            serving = ServingModel.from_recommender(model, version)
            # When the newest events this version learnt from first arrived: freshness starts there.
            oldest = self.registry.version_tags(version).get("lineage.oldest_arrival")
            serving.oldest_arrival = float(oldest) if oldest not in (None, "", "null") else None
            return serving
        except CorruptModelError as exc:
            self.refused.add(version)
            log.error("refusing champion version %s, still serving %s: %s", version, current, exc)
        except RegistryError as exc:
            log.warning("MLflow unavailable, still serving version %s: %s", current, exc)
        except Exception as exc:  # noqa: BLE001 - a bad model must not stop serving
            log.error("could not load the champion, still serving version %s: %s", current, exc)
        return None

    def install(self, serving: ServingModel | None, count: bool = True) -> bool:
        """Swap a fully built model in (event loop side); count (unless the start-up load) and export it."""
        if serving is None:
            return False
        old = self.core.swap(serving)
        if count:
            metrics.MODEL_SWAPS.inc()
        metrics.SERVING_VERSION.set(serving.version)
        log.warning("serving model version %d (was %s)", serving.version, old.version if old else "popularity")
        return True

    async def run(self, poll_s: float) -> None:
        """Reload on a wake-up (a `model.updates` record) or every poll_s seconds."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=poll_s)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()
            self.install(await loop.run_in_executor(None, self.load_if_changed))

    async def follow_updates(self, bootstrap: str, topic: str, model_name: str) -> None:
        """Wake up on every `model.updates` record for our model (group-less: every scorer sees all)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="latest", client_id="advrec-scorer-updates")
        await consumer.start()
        try:
            partitions: set = set()
            while not partitions:
                partitions = await partitions_of(consumer, topic)
                if not partitions:
                    await asyncio.sleep(2.0)
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for messages in batches.values():
                    for message in messages:
                        try:
                            update = json.loads(message.value)
                        except ValueError:
                            continue
                        if update.get("model_name") == model_name:
                            log.warning("model update: %s", update)
                            self.wake.set()
        finally:
            await consumer.stop()


FETCH_MAX_WAIT_MS = 10


class _FastFetchThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust hard-codes fetch_max_wait_ms=1500; a request/response service wants answers in milliseconds."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by the fetcher when the consumer starts
        return consumer


class _FastFetchConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _FastFetchThread:
        return _FastFetchThread(self, loop=self.loop, beacon=self.beacon)


class _FastFetchTransport(faust_aiokafka.Transport):
    Consumer = _FastFetchConsumer


class ScorerApp(faust.App):
    """A Faust app whose consumer fetches with a short max wait (low request latency)."""

    def _new_transport(self) -> Any:
        return _FastFetchTransport(self.conf.broker_consumer, self)


def observe_freshness(model: ServingModel | None, served: list, served_at: float) -> None:
    """On a version's first served answer: event arrival (oldest of its new batches) → now."""
    oldest = getattr(model, "oldest_arrival", None)
    if oldest is None or getattr(model, "freshness_observed", False):
        return
    if any(answer.model_version == model.version for answer in served):
        model.freshness_observed = True
        metrics.FRESHNESS.observe(max(0.0, served_at - oldest))


def create_scorer_app(settings: Settings, bootstrap: str, tansu_workarounds: bool, core: ScorerCore,
                      watcher: ModelWatcher | None) -> faust.App:
    """Build the scorer's Faust app (its own app id, consumer group and web port)."""
    broker_quirks = dict(broker_session_timeout=settings.group_session_timeout_s,
                         broker_heartbeat_interval=max(1.0, settings.group_session_timeout_s / 4))
    if tansu_workarounds:
        # Tansu 0.6's group-join quirk, as in the worker (streams/app.py). Not its one-record-per-batch
        # producer workaround: that only keeps changelog end offsets exact, the scorer has no tables,
        # and it caps the responses at ~600/s (one produce round trip each).
        broker_quirks = dict(broker_session_timeout=6, broker_heartbeat_interval=1, broker_rebalance_timeout=6)
    app = ScorerApp(
        f"{settings.app_id}-scorer",
        broker=",".join(f"kafka://{host}" for host in bootstrap.split(",")),
        store="memory://", topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor, processing_guarantee="at_least_once",
        web_enabled=True, web_bind=settings.web_bind, web_host=settings.web_host or socket.gethostname(),
        web_port=settings.scorer_metrics_port, datadir=str(settings.data_dir / "faust-scorer"),
        broker_max_poll_records=max(500, settings.scorer_batch_max), **broker_quirks,
    )
    metrics.init_labels()
    metrics.SERVING_VERSION.set(core.model.version if core.model is not None else 0)
    view = ChangelogView(bootstrap, f"{settings.app_id}-profiles-changelog",
                         f"{settings.app_id}-item-popularity-changelog")
    requests_topic = app.topic(settings.rec_requests_topic, key_type=bytes, value_type=bytes,
                               key_serializer="raw", value_serializer="raw", partitions=settings.topic_partitions)
    recommendations_topic = app.topic(settings.recommendations_topic, key_type=bytes, key_serializer="raw",
                                      value_type=Recommendation, partitions=settings.topic_partitions)
    deadletter_topic = app.topic(settings.rec_deadletter_topic, value_type=DeadLetter,
                                 partitions=settings.topic_partitions)

    @app.agent(requests_topic)
    async def score(stream):
        """Answer requests a micro-batch at a time."""
        async for events in stream.take_events(settings.scorer_batch_max, within=settings.scorer_batch_seconds):
            received = time.perf_counter()
            parsed, letters = [], []
            for event in events:
                got = parse_request(event.value, settings.scorer_max_k, settings.max_id_length)
                if isinstance(got, Rejected):
                    letters.append((got, event))
                else:
                    parsed.append(got)
            served, rejected = core.serve(parsed, view.seen)
            ready = time.perf_counter()
            served_at = time.time()
            observe_freshness(core.model, served, served_at)
            for answer in served:
                await recommendations_topic.send(key=answer.request.user_id.encode(), value=Recommendation(
                    request_id=answer.request.request_id, user_id=answer.request.user_id, items=answer.items,
                    scores=answer.scores, model_version=answer.model_version, served_at=served_at,
                    source=answer.source))
                metrics.RECOMMENDATIONS.labels(answer.source).inc()
                metrics.SCORING_LATENCY.observe(ready - received)
            for got, event in letters:
                await deadletter_topic.send(value=DeadLetter(
                    reason=got.reason, code=got.code, raw=bytes(event.value or b"")[:4096].decode("utf-8", "replace"),
                    topic=event.message.topic, partition=event.message.partition, offset=event.message.offset))
                metrics.REJECTED.labels("bad_request").inc()
            for got in rejected:
                await deadletter_topic.send(value=DeadLetter(
                    reason=got.reason, code=got.code, raw=json.dumps(got.request.__dict__) if got.request else "",
                    topic=settings.rec_requests_topic, partition=-1, offset=-1))
                metrics.REJECTED.labels("no_model").inc()

    @app.task
    async def tail_changelogs() -> None:
        await view.run(core.set_popularity)

    if watcher is not None:
        @app.task
        async def watch_champion() -> None:
            await watcher.run(settings.scorer_poll_seconds)

        @app.task
        async def follow_updates() -> None:
            await watcher.follow_updates(bootstrap, settings.model_updates_topic, settings.model_name)

    @app.page("/metrics")
    async def metrics_view(web, request):
        """Prometheus exposition of the scorer's metrics."""
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.replace("; charset=utf-8", ""))

    @app.page("/model")
    async def model_view(web, request):
        """Which model is served, and what the seen-items view holds."""
        model = core.model
        return web.json({"model_version": model.version if model else 0, "n_items": model.n_items if model else 0,
                         "profiles": len(view.items), "popular_items": len(core.popularity or ()),
                         "changelog_records": view.records})

    app.advrec_scorer = {"core": core, "view": view, "watcher": watcher}
    return app


@click.command()
@click.option("--loglevel", default="warning", show_default=True)
def scorer(loglevel: str) -> None:
    """Run the scorer: serve the MLflow champion on `rec.requests` → `recommendations` (/metrics, /model)."""
    from registry.commands import build_registry
    from streams.commands import resolve_bootstrap, tansu_workarounds
    from streams.topics import ensure_topics

    from threadpoolctl import threadpool_limits

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Small per-batch products: multi-threaded BLAS only thrashes (p99 1.1 ms → 0.25 ms single-threaded
    # in benchmarks/scorer.py). Scale with scorer processes instead.
    threadpool_limits(1)
    settings = Settings()
    bootstrap = resolve_bootstrap(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_topics(bootstrap, [settings.rec_requests_topic, settings.recommendations_topic,
                              settings.rec_deadletter_topic], settings.topic_partitions, settings.replication_factor)
    ensure_topics(bootstrap, [settings.model_updates_topic], 1, settings.replication_factor)
    core = ScorerCore(settings.scorer_max_k)
    registry = build_registry(settings, export_metrics=False, announce=False)
    watcher = ModelWatcher(core, registry)
    watcher.install(watcher.load_if_changed(), count=False)  # the champion at start, if MLflow has one and answers
    app = create_scorer_app(settings, bootstrap, tansu_workarounds(settings), core, watcher)

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            logger.setLevel(level)

    Worker(app, loglevel=loglevel.upper(), quiet=True).execute_from_commandline()
