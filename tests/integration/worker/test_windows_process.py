"""`advrec windows`: the window sink in processes of its own, beside a worker that runs none.

Two window processes share `events.valid`'s partitions (one consumer group); one is killed -9
while events stream in and is started again. Every valid event must land in a window file, each
file announced on `batches`, and the worker must have taken no part in it.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kafka import KafkaConsumer

from streams.kafka.producer import produce_events
from streams.local.broker import free_port
from streams.local.processes import AdvrecProcess, metric_total, scrape_metrics
from streams.sources.simulator import simulated_events
from tests.integration.conftest import broker_quirks, wait_for
from tests.integration.worker.test_worker import _processed

pytestmark = pytest.mark.integration

TOPIC = "apart-events"
_NAME = re.compile(r"p(\d+)/(\d+)-(\d+)\.parquet$")


def windowed(*roots: Path) -> dict[str, list[str]]:
    """event id: the window files that hold it, by path relative to its store (a name written in
    two stores, by two processes that owned its partition in turn, is one window written twice)."""
    held = defaultdict(set)
    for root in roots:
        for path in root.rglob("*.parquet"):
            for event_id in pq.read_table(path).column("event_id").to_pylist():
                held[event_id].add(str(path.relative_to(root)))
    return {event_id: sorted(files) for event_id, files in held.items()}


def repeated_only_by_a_rewrite(held: dict[str, list[str]]) -> bool:
    """An event is in two files only if its sink was killed after writing a window and before its
    mark was stored: after the restart the same source offsets make a window again, whose bounds
    may differ (it closes on time). Nothing else may repeat an event."""
    return all(len(files) == 1 or (len(files) == 2 and _overlap(*files)) for files in held.values())


def _overlap(a: str, b: str) -> bool:
    """Two windows of the same source partition whose offset ranges overlap."""
    (pa, fa, la), (pb, fb, lb) = (tuple(map(int, _NAME.search(x).groups())) for x in (a, b))
    return pa == pb and fa <= lb and fb <= la


def test_two_window_processes_one_killed_9_window_every_event(kafka_broker, tmp_path):
    events = list(simulated_events(n_events=4000, n_users=120, n_items=300, seed=21))
    windows_root = tmp_path / "windows"
    worker_port = free_port()
    env = {
        "ADVREC_KAFKA_BOOTSTRAP": kafka_broker,
        **broker_quirks(),
        "ADVREC_APP_ID": "apart",
        "ADVREC_EVENTS_TOPIC": TOPIC,
        "ADVREC_DEADLETTER_TOPIC": f"{TOPIC}.deadletter",
        "ADVREC_BATCHES_TOPIC": f"{TOPIC}.batches",
        "ADVREC_FRAUD_ENABLED": "false",
        "ADVREC_WINDOWS_IN_WORKER": "false",
        "ADVREC_WINDOWS_URI": f"file://{windows_root}",
        "ADVREC_WINDOW_MAX_SECONDS": "1",
        "ADVREC_WINDOW_MAX_EVENTS": "300",
    }
    worker = AdvrecProcess(
        ["worker"],
        {**env, "ADVREC_WEB_PORT": str(worker_port), "ADVREC_DATA_DIR": str(tmp_path / "w")},
        tmp_path / "worker.log",
    )
    sinks, urls = [], []
    for name in ("a", "b"):
        port = free_port()
        sink_env = {**env, "ADVREC_WINDOWS_WEB_PORT": str(port), "ADVREC_DATA_DIR": str(tmp_path / name)}
        sinks.append(AdvrecProcess(["windows", "--loglevel", "info"], sink_env, tmp_path / f"windows-{name}.log"))
        urls.append(f"http://127.0.0.1:{port}/metrics")
    worker_base = f"http://127.0.0.1:{worker_port}"
    producer = threading.Thread(target=produce_events, args=(kafka_broker, TOPIC, events), kwargs={"rate": 1_000.0})
    try:
        for process in (worker, *sinks):
            process.start()
        worker.wait_http(f"{worker_base}/metrics")
        for sink, url in zip(sinks, urls):
            sink.wait_http(url)
        producer.start()

        def windowed_by_sinks() -> float:
            total = 0.0
            for url in urls:
                with contextlib.suppress(OSError):  # the killed one, until it answers again
                    total += metric_total(scrape_metrics(url), "advrec_windows_written_total")
            return total

        wait_for(lambda: windowed_by_sinks() >= 2, 60, "windows written by the window processes", *sinks)
        sinks[0].kill9()
        producer.join()
        sinks[0].start()
        sinks[0].wait_http(urls[0])
        wait_for(lambda: _processed(worker_base) >= len(events), 60, "every event validated", worker)

        sent = {e["event_id"] for e in events}
        held = wait_for(
            lambda: (h := windowed(windows_root)).keys() >= sent and h, 90, "every event in a window", *sinks
        )
        assert held.keys() == sent
        assert repeated_only_by_a_rewrite(held), [(e, f) for e, f in held.items() if len(f) > 1][:5]

        # every file was announced on `batches`, under its own path
        consumer = KafkaConsumer(
            f"{TOPIC}.batches", bootstrap_servers=kafka_broker, auto_offset_reset="earliest", consumer_timeout_ms=4000
        )
        announced = {json.loads(m.value)["path"] for m in consumer}
        consumer.close()
        files = {str(p.relative_to(windows_root)) for p in windows_root.rglob("*.parquet")}
        assert files <= announced, sorted(files - announced)[:5]

        # the worker wrote no window and took in no event for windows: the processes did
        worker_samples = scrape_metrics(f"{worker_base}/metrics")
        assert 'advrec_stage_events_total{stage="windows"}' not in worker_samples
        assert worker_samples.get("advrec_windows_written_total", 0.0) == 0
        for process in (worker, *sinks):
            assert "Crashed reason" not in process.log_path.read_text(errors="replace"), process.log_tail(60)
    finally:
        if producer.is_alive():
            producer.join()
        for process in (*sinks, worker):
            process.stop()
