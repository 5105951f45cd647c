"""The window sink: validated events into Parquet files (training batches), announced on `batches`.

Reads the `ValidBatch` envelopes of `events.valid` into a `WindowBuffer` (pure); a window closes
when it holds `window_max_events` events or its first envelope waited `window_max_seconds`. Its
file is written durably (temporary name, fsync, rename), then announced on `batches` (retried until
the broker acknowledges it), then the partition's mark (last offset written) goes to the
`window-marks` table, and only then are the window's envelopes acknowledged. A crash anywhere in
between rewrites the same file under the same name and announces it again; the trainer skips
windows it has trained. Rows of users flagged by then are marked `suspect` (from `fraud.flags`,
read group-less by every process that runs the sink).
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
import msgspec

from streams.contract.records import ValidBatch, encode
from streams.contract.settings import Settings
from streams.contract.windows import WindowStore
from streams.kafka.faust_app import current, hold, release
from streams.kafka.partitioner import watermark_key
from streams.kafka.tail import tail_topics
from streams.worker import metrics
from streams.worker.windowing import Window, WindowBuffer, announcement, window_table

__all__ = ["install", "FlagView"]

log = logging.getLogger(__name__)
_DECODER = msgspec.json.Decoder(ValidBatch)
_RETRY_MAX_S = 30.0
# The take window of the sink's input. A take only adds envelopes to the open windows (what is
# written, and when, is `window_max_events` / `window_max_seconds`), so a short one costs little,
# and a long one delays every stage behind it: at 1 s, the sink finished a 200k-event burst
# 0.3-0.9 s after ingest (docs/broker.md, twenty-sixth session).
TAKE_WINDOW_S = 0.1


class FlagView:
    """Users flagged now, from a group-less tail of `fraud.flags` (the last record per user wins)."""

    def __init__(self) -> None:
        self.flagged: set[str] = set()

    def apply(self, _topic: str, key: bytes | None, value: bytes | None) -> None:
        """Fold one `FraudFlag` record."""
        if key is None or value is None:
            return
        try:
            flagged = bool(msgspec.json.decode(value).get("flagged"))
        except (msgspec.DecodeError, AttributeError):
            return
        user = key.decode("utf-8", "replace")
        if flagged:
            self.flagged.add(user)
        else:
            self.flagged.discard(user)

    def is_flagged(self, user: str) -> bool:
        """Whether the user is flagged now."""
        return user in self.flagged


async def _retry(what: str, attempt):
    """Run `attempt()` until it succeeds, backing off; a window's events stay unacknowledged meanwhile."""
    delay = 0.5
    while True:
        try:
            return await attempt()
        except Exception as exc:  # noqa: BLE001 - disk, object store or broker: retry, never drop the window
            log.error("windows: %s failed (%s); retrying in %.1f s", what, exc, delay)
            metrics.WINDOW_RETRIES.inc()
            await asyncio.sleep(delay)
            delay = min(2 * delay, _RETRY_MAX_S)


def install(app: faust.App, settings: Settings, topology, bootstrap: str) -> None:
    """Add the window sink agent, its closing timer and the flag view's tail to a worker's app (or
    to the window process's: `topology` needs `valid`, `batches`, `window_marks` and `changelogs`)."""
    flags = FlagView()
    store = WindowStore(settings.windows_location)
    marks_table = topology.window_marks
    buffer = WindowBuffer(settings.window_max_events, settings.window_max_seconds)
    intake = metrics.STAGE_EVENTS.labels("windows")
    lock = asyncio.Lock()
    loaded: set[tuple[str, int]] = set()
    # pyarrow imports pandas on its first array (0.2 s here): pay that now, not inside the first
    # window write, where it would stall every agent of the worker.
    window_table(Window(settings.events_topic, 0))

    def mark_key(partition: int) -> bytes:
        return watermark_key(partition, settings.topic_partitions)

    def load_mark(topic: str, partition: int) -> None:
        """The partition's last written offset, from the table (after a restart or a rebalance)."""
        source = (topic, partition)
        if source in loaded:
            return
        stored = marks_table.get(mark_key(partition))
        if stored and stored.get("topic") == topic:
            buffer.marks[source] = max(buffer.marks.get(source, -1), int(stored["offset"]))
        loaded.add(source)

    async def write(window: Window) -> None:
        if window.events:
            table = window_table(window)
            loop = asyncio.get_running_loop()
            uri = await _retry(
                f"writing {window.path}", lambda: loop.run_in_executor(None, store.write, window.path, table)
            )

            async def announce():
                sent = await topology.batches.send(
                    key=f"{window.topic}/{window.partition}".encode(),
                    value=encode(announcement(window, uri, time.time())),
                )
                await sent  # the broker acknowledged it

            await _retry(f"announcing {window.path}", announce)
            marks_table[mark_key(window.partition)] = {"topic": window.topic, "offset": window.last_offset}
            metrics.WINDOWS_WRITTEN.inc()
            metrics.WINDOW_ROWS.observe(len(window.events))
        await release(window.tokens, topology.changelogs)

    async def close(flush: bool = False) -> None:
        for window in buffer.due(time.monotonic(), flush=flush):
            await write(window)

    @app.agent(topology.valid, name="windows")
    async def windows(stream):
        """Add envelopes to the open windows; write the ones that are full."""
        async for events in stream.take_events(64, within=TAKE_WINDOW_S):
            async with lock:  # a rebalance may come while this waits: `current` after it
                events = current(app, events)
                hold(events)  # released when their window is written and announced
                await topology.changelogs.track(app)
                now = time.monotonic()
                for event in events:
                    envelope = _DECODER.decode(event.value)
                    load_mark(envelope.topic, envelope.partition)
                    intake.inc(buffer.update(envelope, now, token=event, is_suspect=flags.is_flagged))
                await close()

    @app.timer(1.0)
    async def close_old_windows():
        """Write windows whose first envelope waited `window_max_seconds` (input may have stopped)."""
        async with lock:
            await close()

    @app.on_partitions_revoked.connect
    async def forget_revoked(app_, revoked, **kwargs):
        """Drop open windows of revoked partitions: their envelopes were never acknowledged, and come again."""
        gone = {tp.partition for tp in revoked if tp.topic == topology.valid.get_topic_name()}
        for source in [s for s in buffer.open if s[1] % settings.topic_partitions in gone]:
            del buffer.open[source]
            loaded.discard(source)

    @app.task
    async def tail_flags() -> None:
        """Follow `fraud.flags` so rows of flagged users are marked suspect."""
        await tail_topics(bootstrap, [settings.fraud_flags_topic], flags.apply, "advrec-worker-flags")
