"""The scorer process: its own Faust app (`{app_id}-scorer`) that serves the MLflow champion.

Requests from `rec.requests` are taken in micro-batches (Faust's `take_events`), decoded into the
typed `RecommendationRequest`, answered by `ScorerCore` (pure: one matrix product and one top-k per
batch) and produced to `recommendations` as one aiokafka batch per partition (`BatchSender`); bad
ones go to `rec.requests.deadletter`. Seen items come from a read-only
tail of the worker's `profiles` changelog (and popularity from its `item-popularity` changelog),
read without a consumer group, so the scorer runs in a process of its own and never writes the
worker's tables. Models are loaded in a thread, fully, and swapped in by one assignment; a
promotion on `model.updates` or the periodic alias check triggers a load. MLflow being down or a
corrupt version never stops serving: the current model stays.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import faust

from streams.contract.records import DeadLetter, Recommendation, encode
from streams.contract.settings import Settings
from streams.kafka.faust_app import AdvrecApp, add_metrics_page, app_options
from streams.serving import metrics
from streams.serving.changelog import ChangelogView
from streams.serving.core import Rejected, ScorerCore, ServingModel, parse_request
from streams.serving.watcher import ModelWatcher

__all__ = ["BatchSender", "create_scorer_app", "observe_freshness"]

# The broker answers a fetch of requests as soon as one is there (`fetch_min_bytes` 1) and holds
# one that finds none for at most this long: at 2,000 requests/s that is a fetch and a drain of
# 1-5 records every 0.5-1 ms.
FETCH_MAX_WAIT_MS = 10
# With `scorer_fetch_wait_ms`, a fetch waits for this much data or that long: more than requests
# fill in any wait worth setting, so the wait is what bounds it.
FETCH_GATHER_BYTES = 1 << 20


class BatchSender:
    """Sends a micro-batch's records as one produce batch per partition, awaiting no delivery.

    Faust's `topic.send` costs a future, callbacks and sensors per record, and awaiting each one
    serialises the batch; aiokafka's batch API appends the records to a batch and hands it to the
    sender whole. Delivery is still awaited where it matters: Faust flushes the producer before it
    commits the request offsets, so an answer is on the broker before its request is committed.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._known_topics: set[str] = set()

    async def send(self, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
        """Produce (key, value) records to `topic`, each to its key's partition (keyless: any one)."""
        if not records:
            return
        producer = self.app.producer._ensure_producer()  # the aiokafka producer under Faust's
        if topic not in self._known_topics:
            await producer.partitions_for(topic)  # metadata for the key partitioner
            self._known_topics.add(topic)
        batches: dict[int, Any] = {}
        for key, value in records:
            partition = producer._partition(topic, None, None, None, key, value)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                await producer.send_batch(batch, topic, partition=partition)
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for partition, batch in batches.items():
            await producer.send_batch(batch, topic, partition=partition)


def dead_letter(code: str, reason: str, raw: str, topic: str, partition: int, offset: int) -> bytes:
    """The encoded `DeadLetter` of a request the scorer cannot answer."""
    return encode(DeadLetter(reason=reason, code=code, raw=raw, topic=topic, partition=partition, offset=offset))


def observe_freshness(model: ServingModel | None, served: list, served_at: float) -> None:
    """On a version's first served answer: event arrival (oldest of its new batches) → now."""
    oldest = getattr(model, "oldest_arrival", None)
    if oldest is None or getattr(model, "freshness_observed", False):
        return
    if any(answer.model_version == model.version for answer in served):
        model.freshness_observed = True
        metrics.FRESHNESS.observe(max(0.0, served_at - oldest))


def create_scorer_app(
    settings: Settings, bootstrap: str, tansu_workarounds: bool, core: ScorerCore, watcher: ModelWatcher | None
) -> faust.App:
    """Build the scorer's Faust app (its own app id, consumer group and web port)."""
    # Tansu's one-record-per-batch workaround only keeps changelog end offsets exact: the scorer has
    # no tables, and it would cap the responses at ~600/s (one produce round trip each).
    app = AdvrecApp(
        f"{settings.app_id}-scorer{settings.group_suffix}",
        **app_options(
            settings,
            bootstrap,
            tansu_workarounds,
            settings.scorer_metrics_port,
            str(settings.data_dir / "faust-scorer"),
            tables=False,
        ),
        broker_max_poll_records=max(500, settings.scorer_batch_max),
        # No linger: BatchSender hands over whole micro-batches already. Acks stay "all" (Faust's
        # default): with acks=1 an answer acknowledged by a leader that then fails is lost after
        # its request was committed; on one broker the two cost the same.
        producer_linger_ms=0,
    )
    # `scorer_fetch_wait_ms` lets the broker gather requests for that long (fewer fetches, less CPU)
    app.fetch_max_wait_ms = settings.scorer_fetch_wait_ms or FETCH_MAX_WAIT_MS
    app.fetch_min_bytes = FETCH_GATHER_BYTES if settings.scorer_fetch_wait_ms else 1
    metrics.init_labels()
    metrics.SERVING_VERSION.set(core.model.version if core.model is not None else 0)
    view = ChangelogView(
        bootstrap,
        f"{settings.app_id}-profiles-changelog",
        settings.fraud_flags_topic if settings.scorer_trusted_popularity else None,
    )
    requests_topic = app.topic(
        settings.rec_requests_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )
    sender = BatchSender(app)

    @app.agent(requests_topic)
    async def score(stream):
        """Answer requests a micro-batch at a time: one matrix product, one produce batch per partition."""
        async for events in stream.take_events(settings.scorer_batch_max, within=settings.scorer_batch_seconds):
            received = time.perf_counter()
            parsed, letters = [], []
            for event in events:
                got = parse_request(event.value, settings.scorer_max_k, settings.max_id_length)
                if isinstance(got, Rejected):
                    raw = bytes(event.value or b"")[:4096].decode("utf-8", "replace")
                    where = event.message
                    letters.append(dead_letter(got.code, got.reason, raw, where.topic, where.partition, where.offset))
                else:
                    parsed.append(got)
            metrics.REJECTED.labels("bad_request").inc(len(letters))
            served, rejected = core.serve(parsed, view.seen)
            latency = time.perf_counter() - received
            served_at = time.time()
            observe_freshness(core.model, served, served_at)
            answers = [
                (
                    answer.request.user_id.encode(),
                    encode(
                        Recommendation(
                            request_id=answer.request.request_id,
                            user_id=answer.request.user_id,
                            items=answer.items,
                            scores=answer.scores,
                            model_version=answer.model_version,
                            served_at=served_at,
                            source=answer.source,
                        )
                    ),
                )
                for answer in served
            ]
            for got in rejected:
                raw = encode(got.request).decode() if got.request else ""
                letters.append(dead_letter(got.code, got.reason, raw, settings.rec_requests_topic, -1, -1))
            metrics.REJECTED.labels("no_model").inc(len(rejected))
            await sender.send(settings.recommendations_topic, answers)
            await sender.send(settings.rec_deadletter_topic, [(None, letter) for letter in letters])
            for source, count in Counter(answer.source for answer in served).items():
                metrics.RECOMMENDATIONS.labels(source).inc(count)
            for _ in served:  # one latency sample per request: the histogram counts requests
                metrics.SCORING_LATENCY.observe(latency)

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

    add_metrics_page(app)

    @app.page("/model")
    async def model_view(web, request):
        """Which model is served, and what the seen-items view holds."""
        model = core.model
        return web.json(
            {
                "model_version": model.version if model else 0,
                "n_items": model.n_items if model else 0,
                "profiles": len(view.items),
                "popular_items": len(core.popularity or ()),
                "changelog_records": view.records,
            }
        )

    return app
