"""The fraud detector in the stream worker: a batch hook, the suspicion table, `fraud.flags`, checkpoints, views.

`install(app)` wires it into the app built by `create_app`. Per ingest batch: every applied event
goes to `FraudDetector.update`, then one `flush`; verdicts that changed are written to the
`suspicion` table, and crossings of the threshold are sent as `FraudFlag` records. The detector's
per-user state is checkpointed into the `fraud-detector` table (co-partitioned with `events`)
every `fraud_checkpoint_s`; after a restart or rebalance the detector is rebuilt from it and the
events after each partition's checkpoint are re-read from Kafka, skipping what it already holds
(docs/detection.md, "In the stream"). Detection logic lives in `streams.fraud` and the
bookkeeping in `streams.fraud.suspicion`; this module must never decide anything about fraud itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from streams.contract.records import FraudFlag, encode
from streams.fraud import DETECTOR_VERSION, DetectorConfig, FraudDetector, Verdict
from streams.fraud.suspicion import PRIMARY_REASONS, Checkpoint, primary_reason, suspicion_entry, transition
from streams.kafka.partitioner import partition_of, watermark_key
from streams.worker import metrics
from streams.worker.validation import InvalidEvent, parse_event

__all__ = ["install", "FraudAgent"]

log = logging.getLogger(__name__)

_CATCH_UP_TIMEOUT_S = 60.0


class FraudAgent:
    """The worker's fraud detector and the tables, topic and metrics around it."""

    def __init__(self, app, context):
        ctx = self.context = context
        s = self.settings = ctx.settings
        self.app, self.limits = app, ctx.limits
        self.bootstrap = ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)
        self.partitions = s.topic_partitions
        self.config = DetectorConfig() if s.fraud_threshold is None else DetectorConfig(threshold=s.fraud_threshold)
        self.suspicion = app.Table(
            "suspicion", default=None, key_type=bytes, partitions=self.partitions, use_partitioner=True
        )
        self.state = app.Table(
            "fraud-detector", default=None, key_type=bytes, partitions=self.partitions, use_partitioner=True
        )
        self.flags = app.topic(
            s.fraud_flags_topic,
            key_type=bytes,
            value_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
            partitions=self.partitions,
        )
        self.profiles = ctx.tables["profiles"]
        self.profiled: dict[int, int] = {}
        self.detector: FraudDetector | None = None
        self.checkpoint = Checkpoint()
        self.loaded: frozenset[int] = frozenset()
        self.pending: set[int] = set()  # loaded partitions whose gap after the checkpoint is not re-read yet
        self.flagged: set[str] = set()
        self.events_since_full = 0
        self.lock = asyncio.Lock()
        self._wm_keys = {p: watermark_key(p, self.partitions) for p in range(self.partitions)}
        self._saved_wm: dict[int, int] = {}

    # ---- the batch hook -----------------------------------------------------------------------
    async def on_batch(self, result, events) -> None:
        """Fold a batch's applied events into the detector, flush once, publish changed verdicts."""
        await self.context.partitioner_ready()
        async with self.lock:
            if self.detector is None or self.actives() != self.loaded:
                self._load()
            firsts: dict[int, int] = {}
            for e in events:
                p, o = e.message.partition, e.message.offset
                if o < firsts.get(p, o + 1):
                    firsts[p] = o
            verdicts: list[Verdict] = []
            for p in sorted(self.pending & set(firsts)):
                # Up to where Faust resumed, and on through what the profiles had applied before the
                # restart: those redelivered events are profile duplicates and never reach `applied`.
                end = max(firsts[p], self.profiled.get(p, -1) + 1)
                verdicts += await self._catch_up(p, self.checkpoint.watermarks.get(p, -1) + 1, end)
                self.pending.discard(p)
            ckpt, det = self.checkpoint, self.detector
            last: dict[str, tuple[int, int]] = {}
            skip: set[str] = set()
            for e in events:
                key, p, o = e.message.key, e.message.partition, e.message.offset
                if key is None:
                    ckpt.advance(p, o)
                    continue
                user = key.decode("utf-8", "replace")
                if ckpt.folded(user, o):  # redelivered after a restart: the detector has it already
                    skip.add(_event_id(e.message.value))
                last[user] = (p, o)
            update = det.update
            for ev in result.applied:
                if skip and ev.event_id in skip:
                    continue
                v = update(ev.user_id, ev.item_id, ev.type, ev.ts, ev.value)
                if v is not None:
                    verdicts.append(v)
            self.events_since_full += len(result.applied)
            for user, (p, o) in last.items():
                if det.events_of(user):
                    ckpt.observe(user, p, o)
                else:
                    ckpt.advance(p, o)
            verdicts += det.flush()
            await self._publish(verdicts)

    # ---- timers -------------------------------------------------------------------------------
    async def on_checkpoint(self) -> None:
        """Write the per-user state of users changed since the last checkpoint, then each partition's watermark."""
        await self.context.partitioner_ready()
        async with self.lock:
            if self.detector is None:
                metrics.FRAUD_FLAGGED_USERS.set(len(self.flagged_in_table(self.actives())))
                return
            self._write_checkpoint(self.loaded)

    async def on_full_flush(self) -> None:
        """Rescore every user against the current population (stale features of quiet users catch up)."""
        await self.context.partitioner_ready()
        async with self.lock:
            if self.detector is None or not self.events_since_full:
                return
            self.events_since_full = 0
            started = time.perf_counter()
            verdicts = self.detector.flush(full=True)
            await self._publish(verdicts)
            log.info(
                "fraud: full flush of %d users in %.2fs, %d verdicts changed",
                len(self.detector.verdicts()),
                time.perf_counter() - started,
                len(verdicts),
            )

    # ---- state --------------------------------------------------------------------------------
    def actives(self) -> frozenset[int]:
        topic = self.settings.events_topic
        return frozenset(tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic)

    def _write_checkpoint(self, partitions) -> None:
        det, ckpt, table = self.detector, self.checkpoint, self.state
        for p, users in ckpt.take_dirty().items():
            if p not in partitions:
                continue
            for user in users:
                table[user.encode()] = {"state": det.user_state(user), "mark": ckpt.marks[user]}
        # Written after its users: within a changelog partition Kafka keeps this order.
        for p in partitions:
            w = ckpt.watermarks.get(p)
            if w is not None and w != self._saved_wm.get(p):
                table[self._wm_keys[p]] = {"partition": p, "watermark": w}
                self._saved_wm[p] = w

    def _load(self) -> None:
        """(Re)build the detector from the checkpoints of the partitions assigned now."""
        actives = self.actives()
        if self.detector is not None:
            self._write_checkpoint(self.loaded & actives)
        states, marks, watermarks = {}, {}, {}
        for key, value in self.state.items():
            if not value:
                continue
            if "watermark" in value:
                if value["partition"] in actives:
                    watermarks[value["partition"]] = value["watermark"]
            elif partition_of(key, self.partitions) in actives:
                user = key.decode("utf-8", "replace")
                states[user], marks[user] = value["state"], value["mark"]
        self.profiled = {}  # partition -> highest offset the restored profiles had applied
        for profile in self.profiles.values():
            for p, offset in ((profile or {}).get("offsets") or {}).items():
                if int(p) in actives and offset > self.profiled.get(int(p), -1):
                    self.profiled[int(p)] = offset
        self.detector = FraudDetector.from_users(states, self.config)
        self.checkpoint = Checkpoint(marks, watermarks)
        self._saved_wm = dict(watermarks)
        self.loaded, self.pending = actives, set(actives)
        self.flagged = self.flagged_in_table(actives)
        self.events_since_full = len(states)  # the next full flush refreshes the rebuilt scores
        metrics.FRAUD_FLAGGED_USERS.set(len(self.flagged))
        log.info("fraud: detector rebuilt for partitions %s from %d users", sorted(actives), len(states))

    def flagged_in_table(self, partitions) -> set[str]:
        return {
            k.decode("utf-8", "replace")
            for k, v in self.suspicion.items()
            if v and v.get("flagged") and partition_of(k, self.partitions) in partitions
        }

    async def _catch_up(self, partition: int, start: int, end: int) -> list[Verdict]:
        """Re-read `events` [start, end) of a partition: events committed after the last checkpoint."""
        if start >= end:
            return []
        from aiokafka import AIOKafkaConsumer, TopicPartition

        tp = TopicPartition(self.settings.events_topic, partition)
        # Assigned by hand, no group: none of Tansu's group quirks apply to this consumer.
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        await consumer.start()
        verdicts, folded, now = [], 0, time.time()
        deadline = time.monotonic() + _CATCH_UP_TIMEOUT_S
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            position = start
            while position < end and time.monotonic() < deadline:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
                for record in batch.get(tp, []):
                    if record.offset >= end:
                        position = end
                        break
                    position = record.offset + 1
                    try:
                        ev = parse_event(record.value, self.limits, now)
                    except InvalidEvent:
                        continue
                    if self.checkpoint.folded(ev.user_id, record.offset):
                        continue
                    v = self.detector.update(ev.user_id, ev.item_id, ev.type, ev.ts, ev.value)
                    if v is not None:
                        verdicts.append(v)
                    self.checkpoint.observe(ev.user_id, partition, record.offset)
                    folded += 1
            if position < end:
                log.warning("fraud: catch-up of %s[%d] stopped at %d of %d", tp.topic, partition, position, end)
        finally:
            await consumer.stop()
        self.events_since_full += folded
        log.info("fraud: re-read %s[%d] offsets %d..%d, %d events folded", tp.topic, partition, start, end - 1, folded)
        return verdicts

    # ---- output -------------------------------------------------------------------------------
    async def _publish(self, verdicts: list[Verdict]) -> None:
        """Write changed verdicts to the suspicion table; send a FraudFlag on each flag or clear."""
        if not verdicts:
            return
        latest = {v.user_id: v for v in verdicts}
        now = time.time()
        sends = []
        for user, v in latest.items():
            metrics.FRAUD_SCORE.observe(v.score)
            key = user.encode()
            move = transition(self.suspicion.get(key), v.flagged)
            self.suspicion[key] = suspicion_entry(v.score, v.flagged, v.reasons, v.version, now)
            if move == "flag":
                metrics.FRAUD_FLAGS.labels(primary_reason(v.reasons)).inc()
                self.flagged.add(user)
            elif move == "clear":
                metrics.FRAUD_CLEARED.inc()
                self.flagged.discard(user)
            if move:
                sends.append(
                    (
                        key,
                        FraudFlag(
                            user_id=user,
                            score=v.score,
                            reasons=list(v.reasons),
                            ts=now,
                            detector_version=v.version,
                            flagged=v.flagged,
                        ),
                    )
                )
        metrics.FRAUD_FLAGGED_USERS.set(len(self.flagged))
        for key, flag in sends:
            await self.flags.send(key=key, value=encode(flag))

    def view(self, user: str) -> dict | None:
        """GET /fraud/{user}: the stored verdict, else the detector's live one; None if neither knows the user."""
        stored = self.suspicion.get(user.encode())
        det = self.detector
        known = det is not None and det.events_of(user) > 0
        if stored is None and not known:
            return None
        out = {"user_id": user, **(stored or {})}
        if stored is None:
            v = det.score(user)
            out.update(score=v.score, flagged=v.flagged, reasons=list(v.reasons), ts=None, version=v.version)
        out["detector_events"] = det.events_of(user) if det is not None else None
        return out


def _event_id(value: bytes) -> str:
    try:
        return str(json.loads(value).get("event_id"))
    except (ValueError, AttributeError):
        return ""


def install(app, context) -> FraudAgent | None:
    """Add the fraud detector to a worker app built by `create_app` (nothing if ADVREC_FRAUD_ENABLED=false)."""
    settings = context.settings
    if not settings.fraud_enabled:
        return None
    agent = FraudAgent(app, context)
    context.batch_hooks.append(agent.on_batch)
    context.tables.update(suspicion=agent.suspicion, **{"fraud-detector": agent.state})
    context.topics["fraud_flags"] = agent.flags
    for reason in PRIMARY_REASONS:
        metrics.FRAUD_FLAGS.labels(reason)
    app.timer(interval=settings.fraud_checkpoint_s)(agent.on_checkpoint)
    app.timer(interval=settings.fraud_full_flush_s)(agent.on_full_flush)

    @app.task
    async def declare_flags_topic():
        """Create `fraud.flags` with the worker's partition count before the first flag."""
        await agent.flags.maybe_declare()

    @app.page("/fraud/{user_id}")
    @app.table_route(table=agent.suspicion, match_info="user_id")
    async def fraud_view(web, request, user_id: str):
        """The fraud verdict of one user as JSON, 404 if none."""
        out = agent.view(user_id)
        if out is None:
            return web.json({"error": f"no verdict for user {user_id!r}"}, status=404)
        return web.json(out)

    @app.page("/fraud")
    async def flagged_view(web, request):
        """Users flagged now among this worker's partitions."""
        users = sorted(agent.flagged_in_table(agent.actives()))
        return web.json({"flagged": users, "count": len(users), "detector_version": DETECTOR_VERSION})

    return agent
