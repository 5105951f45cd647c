"""At-least-once under a crash: a worker killed -9 mid-stream against one left alone, same events.

    .venv/bin/python benchmarks/guarantee.py [--events 20000] [--source sim|movielens|taobao]

advrec runs at-least-once with idempotent updates (exactly-once is refused: docs/broker.md,
Processing guarantee). On the embedded Apache Kafka, in the same run, the same events are produced
at 3,000/s while a real `advrec worker` runs, twice:
1. clean: the worker is left alone;
2. kill -9: the worker is killed once a third of the events are processed, then restarted.
Each prints the events the worker saw again (`advrec_events_duplicate_total`, caught by the
profiles' offset watermark), the events applied twice (profile events summed over users minus
events sent: must be 0) and the time from the first send to the last event applied; then the ratio
of the two times (what the crash cost).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import load_events  # noqa: E402

from streams.kafka.producer import produce_events  # noqa: E402
from streams.kafka.topics import ensure_topics  # noqa: E402
from streams.local.broker import EmbeddedBroker, free_port  # noqa: E402
from streams.local.processes import AdvrecProcess, metric_total, scrape_metrics  # noqa: E402

RUNS = ("clean", "kill -9")


def _seen(base: str) -> float:
    samples = scrape_metrics(f"{base}/metrics")
    return sum(
        metric_total(samples, n)
        for n in ("advrec_events_processed_total", "advrec_dead_letters_total", "advrec_events_duplicate_total")
    )


def _profile_events(base: str, users: list[str]) -> int | None:
    total = 0
    for user in users:
        try:
            with urllib.request.urlopen(f"{base}/profiles/{user}", timeout=5) as response:
                total += json.loads(response.read())["events"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                continue
            return None  # 503: tables still recovering
    return total


def crash_run(bootstrap: str, name: str, kill: bool, events: list[dict], workdir: Path) -> dict:
    """Produce while a worker runs (if `kill`: killed -9 at a third, restarted); count what was seen, applied twice."""
    topic = f"crash-{name}"
    ensure_topics(bootstrap, [topic, f"{topic}.deadletter"], 4)
    port = free_port()
    env = {
        "ADVREC_KAFKA_BOOTSTRAP": bootstrap,
        "ADVREC_TANSU_WORKAROUNDS": "0",
        "ADVREC_APP_ID": topic,
        "ADVREC_EVENTS_TOPIC": topic,
        "ADVREC_DEADLETTER_TOPIC": f"{topic}.deadletter",
        "ADVREC_WEB_PORT": str(port),
        "ADVREC_DATA_DIR": str(workdir),
    }
    base = f"http://127.0.0.1:{port}"
    worker = AdvrecProcess(["worker"], env, workdir / "worker.log").start()
    users = sorted({e["user_id"] for e in events})
    producer = threading.Thread(target=produce_events, args=(bootstrap, topic, events), kwargs={"rate": 3_000.0})
    try:
        worker.wait_http(f"{base}/metrics", 90)
        started = time.perf_counter()
        producer.start()
        if kill:
            while _seen(base) < len(events) // 3:
                time.sleep(0.1)
            worker.kill9()
            producer.join()
            worker.start()
            worker.wait_http(f"{base}/metrics", 90)
        applied = None
        while time.perf_counter() - started < 300:
            applied = _profile_events(base, users)
            if applied is not None and applied >= len(events):
                break
            time.sleep(0.2)
        last_applied_s = time.perf_counter() - started
        producer.join()
        time.sleep(2)
        applied = _profile_events(base, users)
        duplicates = metric_total(scrape_metrics(f"{base}/metrics"), "advrec_events_duplicate_total")
        return dict(redelivered=duplicates, applied_twice=(applied or 0) - len(events), last_applied_s=last_applied_s)
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--source", choices=["sim", "movielens", "taobao"], default="sim")
    args = parser.parse_args()

    events = load_events(args.source, args.events)
    results = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "kafka", engine="kafka") as broker:
        for n, run in enumerate(RUNS):
            results[run] = crash_run(broker.bootstrap, str(n), run != "clean", events, Path(tmp) / str(n))

    print(f"source={args.source} events={len(events)} produced at 3,000/s (Apache Kafka, at-least-once)")
    print(f"{'run':10} {'redelivered':>12} {'applied twice':>14} {'first send -> last applied s':>29}")
    for run, r in results.items():
        print(f"{run:10} {r['redelivered']:12.0f} {r['applied_twice']:14d} {r['last_applied_s']:29.1f}")
    ratio = results["kill -9"]["last_applied_s"] / results["clean"]["last_applied_s"]
    print(f"ratio time to the last event applied, kill -9 / clean: {ratio:.2f}")


if __name__ == "__main__":
    main()
