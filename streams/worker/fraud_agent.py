"""The one fraud detector of the stream: `fraud.events` in, the suspicion table and `fraud.flags` out.

`fraud.events` has one partition, so exactly one worker runs the detector and it sees every
validated event, whatever the number of workers: its verdicts do not depend on how users are
spread over workers. Analysts' labels (`fraud.labels`, followed group-less by every worker)
override the detector's verdict for the labelled user, and refit the supervised model that ranks
the review queue (`GET /fraud/review`; it never sets or clears a flag itself: docs/detection.md).

Per take of envelopes (a short window: `FOLD_WINDOW_S`): each event new to the detector
(`FoldMarks`) goes to `FraudDetector.update`. A flush (rescoring the users changed since the last
one) follows every `batch_max_seconds`, or as soon as the input pauses (`FOLD_WINDOW_S` without
a take): folding is cheap per event, while a flush costs per user it rescores, so the takes stay
small (the detector keeps pace with ingest instead of idling out a long take window) and the
flushes stay as few as before. Verdicts that changed go to the `suspicion` table (one partition,
beside the detector) and crossings of the threshold to `fraud.flags`.

Every `fraud_checkpoint_s` the state of the users changed since the last checkpoint is written to
the `fraud-detector` table with their fold marks, and only then are the envelopes folded so far
acknowledged. After a restart or a rebalance the detector is rebuilt from that table and the
envelopes after the checkpoint are read again; the marks skip what the checkpoint holds. Detection
logic lives in `streams.fraud`; this module decides nothing about fraud itself.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
import msgspec

from streams.contract.records import FraudFlag, FraudLabel, ValidBatch, encode
from streams.contract.settings import Settings
from streams.fraud import DETECTOR_VERSION, DetectorConfig, FraudDetector, Verdict
from streams.fraud.supervised import LabelBook, LabelModel
from streams.fraud.suspicion import (
    PRIMARY_REASONS,
    changed,
    full_rescore_due,
    labelled,
    primary_reason,
    suspicion_entry,
    transition,
)
from streams.fraud.trust import TrustPolicy, gate
from streams.kafka.faust_app import current, hold, release, table_view
from streams.kafka.tail import tail_topics
from streams.worker import metrics
from streams.worker.folding import FoldMarks

__all__ = ["install", "FraudAgent"]

log = logging.getLogger(__name__)
_DECODER = msgspec.json.Decoder(ValidBatch)
_ENCODER = msgspec.json.Encoder()
_EVENTS_BETWEEN_PAUSES = 5_000
# The take window of the detector's input, and the pause after the last take that brings the next
# flush forward: the detector folds what arrived within this, then waits for the next take.
FOLD_WINDOW_S = 0.05


class FraudAgent:
    """The detector, its fold marks, the envelopes not yet checkpointed, and the tables around them."""

    def __init__(self, app: faust.App, settings: Settings, topology) -> None:
        self.app, self.settings, self.topology = app, settings, topology
        # a newcomer to the detector's swarm test is an account the trust gate does not yet find established
        threshold = {} if settings.fraud_threshold is None else {"threshold": settings.fraud_threshold}
        self.config = DetectorConfig(newcomer_events=settings.trust_min_events, **threshold)
        self.policy = TrustPolicy.from_settings(settings)
        self.suspicion, self.state = topology.suspicion, topology.detector_state
        self.detector: FraudDetector | None = None
        self.marks = FoldMarks()
        self.held: list = []  # envelopes folded since the last checkpoint: acknowledged by it
        self.flagged: set[str] = set()
        # folded since the last flush: the events, the verdicts `update` returned, the users touched
        self.unflushed = 0
        self.unflushed_verdicts: list[Verdict] = []
        self.touched: set[str] = set()  # their trust may have changed with these events
        self.flushed_at = self.folded_at = time.monotonic()
        self.events_since_full = 0
        self.full_ended_at: float | None = None  # monotonic end of the last full rescore
        self.full_cost_s = 0.0  # how long it took
        self.lock = asyncio.Lock()
        self.book = LabelBook()
        self.labels: dict[str, str] = {}  # user -> the analyst's latest label
        self.relabelled: set[str] = set()  # users whose label changed since the last publish
        self.model = LabelModel()
        self.review: dict[str, float] = {}
        self.review_stale = False
        self.intake = metrics.STAGE_EVENTS.labels("fraud")  # created at 0 where the detector is installed

    # ---- the stream ------------------------------------------------------------------------------
    async def on_batch(self, events: list) -> None:
        """Fold a take of envelopes into the detector; flush if one is due (`flush_due`)."""
        async with self.lock:  # a rebalance may come while this waits (`forget`): `current` after it
            events = current(self.app, events)
            hold(events)
            await self.topology.changelogs.track(self.app)
            if self.detector is None:
                self._load()
            det, marks, folded = self.detector, self.marks, 0
            verdicts, touched = self.unflushed_verdicts, self.touched
            next_pause = _EVENTS_BETWEEN_PAUSES
            for event in events:
                if folded >= next_pause:  # a take can hold many envelopes: let heartbeats and views run
                    next_pause += _EVENTS_BETWEEN_PAUSES
                    await asyncio.sleep(0)
                envelope = _DECODER.decode(event.value)
                source = f"{envelope.topic}/{envelope.partition}"
                marks.begin()
                for e in envelope.events:
                    if not marks.fresh(e.user_id, source, e.offset):
                        continue
                    folded += 1
                    touched.add(e.user_id)
                    verdict = det.update(e.user_id, e.item_id, e.type, e.ts, e.value)
                    if verdict is not None:
                        verdicts.append(verdict)
            self.events_since_full += folded
            self.unflushed += folded
            self.held.extend(events)
            self.folded_at = time.monotonic()
            if self.unflushed and flush_due(
                self.folded_at, self.flushed_at, self.folded_at, self.settings.batch_max_seconds
            ):
                await self._flush()

    async def on_flush_tick(self) -> None:
        """Flush what was folded once the input pauses (or the flush period is over)."""
        async with self.lock:
            now = time.monotonic()
            if self.unflushed and flush_due(now, self.flushed_at, self.folded_at, self.settings.batch_max_seconds):
                await self._flush()

    async def _flush(self) -> None:
        """Rescore the users changed since the last flush and publish the verdicts that changed."""
        verdicts = self.unflushed_verdicts + await _flushed(self.detector.flush_steps())
        await self._publish(verdicts + self._relabelled_verdicts(), self.touched)
        self.intake.inc(self.unflushed)  # taken in: folded and scored
        self._forget_unflushed()

    def _forget_unflushed(self) -> None:
        """The folded events are scored and published: start counting anew."""
        self.unflushed, self.unflushed_verdicts, self.touched = 0, [], set()
        self.flushed_at = time.monotonic()

    async def on_checkpoint(self) -> None:
        """Write the state and marks of users changed since the last checkpoint, then acknowledge."""
        async with self.lock:
            if self.detector is None:
                return
            if self.unflushed:  # the envelopes acknowledged below have their verdicts published first
                await self._flush()
            rows = {
                user.encode(): _ENCODER.encode({"state": self.detector.user_state(user), "marks": self.marks.of(user)})
                for user in self.marks.take_dirty()
            }
            await self.topology.changelogs.write(self.app, self.state, rows)
            await release(self.held, self.topology.changelogs)
            self.held = []

    async def on_full_flush(self) -> None:
        """Rescore every user against the current population (stale verdicts of quiet users catch up)."""
        async with self.lock:
            if self.detector is None or not self.events_since_full:
                return
            started = time.monotonic()
            since = None if self.full_ended_at is None else started - self.full_ended_at
            if not full_rescore_due(since, self.full_cost_s):  # a large population: the period stretches
                return
            self.events_since_full = 0
            verdicts = self.unflushed_verdicts + await _flushed(self.detector.flush_steps(full=True))
            self.full_ended_at = time.monotonic()
            self.full_cost_s = self.full_ended_at - started
            metrics.FRAUD_FULL_RESCORE_SECONDS.set(self.full_cost_s)
            await self._publish(verdicts, self.touched)
            self.intake.inc(self.unflushed)
            self._forget_unflushed()
            log.info(
                "fraud: full flush of %d users in %.2fs, %d verdicts changed",
                len(self.detector.verdicts()),
                self.full_cost_s,
                len(verdicts),
            )

    # ---- labels -----------------------------------------------------------------------------------
    def on_label(self, _topic: str, _key: bytes | None, value: bytes | None) -> None:
        """Fold one `FraudLabel` record (every worker keeps the book; the detector's owner acts on it)."""
        try:
            label = msgspec.json.decode(value or b"", type=FraudLabel)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            log.warning("fraud: ignoring a malformed label %r", (value or b"")[:200])
            return
        if self.book.update(label):
            self.labels[label.user_id] = label.label
            self.relabelled.add(label.user_id)
            self.review_stale = True
            metrics.FRAUD_LABELS.labels(label.label).inc()

    def _relabelled_verdicts(self) -> list[Verdict]:
        """The detector's verdicts of users whose label changed (the label is applied in `_publish`)."""
        users, self.relabelled = self.relabelled, set()
        return [self.detector.score(user) for user in sorted(users)] if self.detector is not None else []

    async def on_labels_tick(self) -> None:
        """Publish label changes even while no events arrive; refit the review model when labels changed."""
        async with self.lock:
            if self.detector is None:
                return
            await self._publish(self._relabelled_verdicts())
            if self.review_stale:
                self.review_stale = False
                self.review = self.model.refit(self.detector, self.book)

    def review_queue(self, n: int) -> list[dict]:
        """The `n` unlabelled users most worth an analyst's look (highest review priority first)."""
        ranked = sorted(((p, u) for u, p in self.review.items() if u not in self.labels), reverse=True)[:n]
        return [{"user_id": u, "priority": round(p, 4)} for p, u in ranked]

    def forget(self) -> None:
        """The partition went elsewhere: drop the in-memory detector (its envelopes come again there)."""
        self.detector, self.held, self.marks = None, [], FoldMarks()
        self._forget_unflushed()

    # ---- state -----------------------------------------------------------------------------------
    def _load(self) -> None:
        """(Re)build the detector from the checkpoint table."""
        states, marks = {}, {}
        for key, value in self.state.items():
            if value:
                user, stored = key.decode("utf-8", "replace"), msgspec.json.decode(value)
                states[user], marks[user] = stored["state"], stored["marks"]
        self.detector = FraudDetector.from_users(states, self.config)
        self.marks = FoldMarks(marks)
        self.flagged = flagged_users(self.suspicion)
        self.events_since_full = len(states)  # the next full flush refreshes the rebuilt scores
        metrics.FRAUD_FLAGGED_USERS.set(len(self.flagged))
        log.info("fraud: detector rebuilt from %d users", len(states))

    # ---- output ----------------------------------------------------------------------------------
    def _trusted(self, user: str, flagged: bool) -> bool:
        """The trust gate's verdict on the user now; an analyst's `genuine` label trusts at once."""
        if self.labels.get(user) == "genuine":
            return True
        return gate(self.policy, self.detector, user, flagged=flagged)[0]

    async def _publish(self, verdicts: list[Verdict], touched: set[str] = frozenset()) -> None:
        """Write changed verdicts to the suspicion table; send a FraudFlag on each flag, clear or trust change.

        `touched`: users whose events were just folded in, whose trust may have changed without a
        new verdict (an account growing established).
        """
        by_user = {v.user_id: v for v in verdicts}
        for v in by_user.values():
            metrics.FRAUD_SCORE.observe(v.score)
        for user in touched - by_user.keys():
            by_user[user] = self.detector.score(user)
        if not by_user:
            return
        now = time.time()
        rows, sends = {}, []
        for user, v in by_user.items():
            key = user.encode()
            flagged, reasons = labelled(v.flagged, v.reasons, self.labels.get(user))
            previous = stored_entry(self.suspicion, key)
            trusted = self._trusted(user, flagged)
            entry = suspicion_entry(v.score, flagged, reasons, v.version, now, trusted)
            if not changed(previous, entry):
                continue
            move = transition(previous, flagged)
            # a new account starts untrusted, as consumers assume: only a change is news
            trust_moved = trusted != bool(previous and previous.get("trusted"))
            rows[key] = _ENCODER.encode(entry)
            if move == "flag":
                metrics.FRAUD_FLAGS.labels(primary_reason(reasons)).inc()
                self.flagged.add(user)
            elif move == "clear":
                metrics.FRAUD_CLEARED.inc()
                self.flagged.discard(user)
            if move or trust_moved:
                flag = FraudFlag(
                    user_id=user,
                    score=v.score,
                    reasons=reasons,
                    ts=now,
                    detector_version=v.version,
                    flagged=flagged,
                    trusted=trusted,
                )
                sends.append((key, flag))
        metrics.FRAUD_FLAGGED_USERS.set(len(self.flagged))
        await self.topology.changelogs.write(self.app, self.suspicion, rows)
        await self.topology.changelogs.send_records(
            self.app, self.topology.flags.get_topic_name(), [(key, encode(flag)) for key, flag in sends]
        )

    def view(self, user: str) -> dict | None:
        """GET /fraud/{user}: the stored verdict, else the detector's live one; None if neither knows the user."""
        stored = stored_entry(self.suspicion, user.encode())
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


def stored_entry(suspicion, key: bytes) -> dict | None:
    """The user's entry in the suspicion table (JSON bytes, like every table the agents write in bulk)."""
    value = suspicion.get(key)
    return None if value is None else msgspec.json.decode(value)


def flagged_users(suspicion) -> set[str]:
    """The users the suspicion table holds flagged."""
    out = set()
    for key, value in suspicion.items():
        if value and msgspec.json.decode(value).get("flagged"):
            out.add(key.decode("utf-8", "replace"))
    return out


def flush_due(now: float, flushed_at: float, folded_at: float, period_s: float) -> bool:
    """Whether the events folded since the last flush (at `flushed_at`, monotonic seconds; the last
    take at `folded_at`) are to be flushed `now`: the flush period is over, or the input has paused
    (no take for `FOLD_WINDOW_S`)."""
    return now - flushed_at >= period_s or now - folded_at >= FOLD_WINDOW_S


async def _flushed(steps) -> list[Verdict]:
    """Run a detector's flush step by step, letting the event loop run between steps (a full
    flush of many users takes seconds: ingest, views and heartbeats would wait that long)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(0)


def install(app: faust.App, settings: Settings, topology, bootstrap: str) -> FraudAgent:
    """Add the fraud detector's agent, timers and views to the worker's app."""
    agent = FraudAgent(app, settings, topology)
    for reason in PRIMARY_REASONS:
        metrics.FRAUD_FLAGS.labels(reason)
    fraud_topic = topology.fraud_events.get_topic_name()

    @app.agent(topology.fraud_events, name="fraud")
    async def detect(stream):
        """Fold envelopes of validated events into the one detector."""
        async for events in stream.take_events(256, within=FOLD_WINDOW_S):
            await agent.on_batch(events)

    app.timer(interval=FOLD_WINDOW_S)(agent.on_flush_tick)
    app.timer(interval=settings.fraud_checkpoint_s)(agent.on_checkpoint)
    app.timer(interval=settings.fraud_full_flush_s)(agent.on_full_flush)
    app.timer(interval=2.0)(agent.on_labels_tick)

    @app.task
    async def follow_labels() -> None:
        """Every worker keeps the analysts' labels (the detector may move to it in a rebalance)."""
        await tail_topics(bootstrap, [settings.fraud_labels_topic], agent.on_label, "advrec-worker-labels")

    @app.on_partitions_revoked.connect
    async def forget_revoked(app_, revoked, **kwargs):
        """Lost the detector's partition: forget its state (the new owner rebuilds it from the checkpoint)."""
        if any(tp.topic == fraud_topic for tp in revoked):
            async with agent.lock:
                agent.forget()

    @table_view(app, "/fraud/review", agent.suspicion, exact_key="review")
    async def review_view(web, request):
        """The review queue: unlabelled users ranked by the label model blended with the detector (?n=20)."""
        n = min(int(request.query.get("n", "20")), 1000)
        return web.json({"queue": agent.review_queue(n), "labels": len(agent.labels), "model": agent.model.fitted})

    @table_view(app, "/fraud/{user_id}", agent.suspicion, match_info="user_id")
    async def fraud_view(web, request, user_id: str):
        """The fraud verdict of one user as JSON, 404 if none."""
        out = agent.view(user_id)
        if out is None:
            return web.json({"error": f"no verdict for user {user_id!r}"}, status=404)
        return web.json(out)

    @table_view(app, "/fraud", agent.suspicion, exact_key="flagged")
    async def flagged_view(web, request):
        """Users flagged now (the suspicion table has one partition: this answers from its owner)."""
        users = sorted(flagged_users(agent.suspicion))
        return web.json({"flagged": users, "count": len(users), "detector_version": DETECTOR_VERSION})

    return agent
