"""Processing guarantee: at-least-once (idempotent profile updates) vs exactly-once (Kafka transactions).

    .venv/bin/python benchmarks/guarantee.py [--events 60000] [--source sim|movielens]

On the embedded Apache Kafka, for each guarantee in the same run:
1. throughput: a real `advrec worker` over a preloaded topic (events/s wall, CPU µs/event);
2. a crash: the same events produced while a worker runs, `kill -9` once a third is processed,
   restart; then the redelivered events the worker saw again (`advrec_events_duplicate_total`,
   caught by the profiles' offset watermark), the events applied twice (profile events summed over
   users minus events sent: must be 0), and the time from restart to the last event applied.
Prints both next to each other and the ratio of their throughputs.
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

from ingest import load_events, worker_run  # noqa: E402

from streams.kafka.producer import produce_events, send_raw  # noqa: E402
from streams.kafka.topics import ensure_topics  # noqa: E402
from streams.local.broker import EmbeddedBroker, free_port  # noqa: E402
from streams.local.processes import AdvrecProcess, metric_total, scrape_metrics  # noqa: E402

GUARANTEES = ("at_least_once", "exactly_once")


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


def crash_run(bootstrap: str, guarantee: str, events: list[dict], workdir: Path) -> dict:
    """Produce while a worker runs, kill -9 it at a third, restart; count what was seen and applied twice."""
    topic = f"crash-{guarantee}"
    ensure_topics(bootstrap, [topic, f"{topic}.deadletter"], 4)
    port = free_port()
    env = {
        "ADVREC_KAFKA_BOOTSTRAP": bootstrap,
        "ADVREC_TANSU_WORKAROUNDS": "0",
        "ADVREC_APP_ID": f"crash-{guarantee}",
        "ADVREC_EVENTS_TOPIC": topic,
        "ADVREC_DEADLETTER_TOPIC": f"{topic}.deadletter",
        "ADVREC_WEB_PORT": str(port),
        "ADVREC_DATA_DIR": str(workdir),
        "ADVREC_PROCESSING_GUARANTEE": guarantee,
    }
    base = f"http://127.0.0.1:{port}"
    worker = AdvrecProcess(["worker"], env, workdir / "worker.log").start()
    users = sorted({e["user_id"] for e in events})
    producer = threading.Thread(target=produce_events, args=(bootstrap, topic, events), kwargs={"rate": 3_000.0})
    try:
        worker.wait_http(f"{base}/metrics", 90)
        producer.start()
        while _seen(base) < len(events) // 3:
            time.sleep(0.1)
        worker.kill9()
        producer.join()
        restarted = time.perf_counter()
        worker.start()
        worker.wait_http(f"{base}/metrics", 90)
        applied = None
        while time.perf_counter() - restarted < 300:
            applied = _profile_events(base, users)
            if applied is not None and applied >= len(events):
                break
            time.sleep(0.2)
        recovered_s = time.perf_counter() - restarted
        time.sleep(2)
        applied = _profile_events(base, users)
        duplicates = metric_total(scrape_metrics(f"{base}/metrics"), "advrec_events_duplicate_total")
        return dict(redelivered=duplicates, applied_twice=(applied or 0) - len(events), recovered_s=recovered_s)
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--crash-events", type=int, default=20_000)
    parser.add_argument("--source", choices=["sim", "movielens", "taobao"], default="sim")
    args = parser.parse_args()

    events = load_events(args.source, args.events)
    records = [(e["user_id"].encode(), json.dumps(e).encode()) for e in events]
    crash_events = events[: args.crash_events]
    results = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "kafka", engine="kafka") as broker:
        topic = "guarantee-events"
        ensure_topics(broker.bootstrap, [topic, "events.deadletter"], 4)
        send_raw(broker.bootstrap, topic, records)
        for guarantee in GUARANTEES:
            work = Path(tmp) / guarantee
            run = worker_run(
                broker.bootstrap, topic, len(records), work / "rate", {"ADVREC_PROCESSING_GUARANTEE": guarantee}
            )
            crash = crash_run(broker.bootstrap, guarantee, crash_events, work / "crash")
            results[guarantee] = dict(rate=run.rate, cpu=run.cpu, **crash)

    print(f"source={args.source} throughput events={len(records)} crash events={len(crash_events)} (Apache Kafka)")
    print(
        f"{'guarantee':15} {'events/s':>9} {'us CPU/ev':>10} {'redelivered':>12} {'applied twice':>14} "
        f"{'recovery s':>11}"
    )
    for guarantee, r in results.items():
        print(
            f"{guarantee:15} {r['rate']:9.0f} {r['cpu']:10.0f} {r['redelivered']:12.0f} {r['applied_twice']:14d} "
            f"{r['recovered_s']:11.1f}"
        )
    alo, eos = results["at_least_once"], results["exactly_once"]
    print(f"ratio exactly_once / at_least_once events/s: {eos['rate'] / alo['rate']:.2f}")


if __name__ == "__main__":
    main()
