"""Scorer latency and throughput: top-10 over 10k items, inside the scorer and end to end through Kafka.

    .venv/bin/python benchmarks/scorer.py [--items 10000] [--users 10000] [--requests 4000] [--no-kafka]

1. In-process (`ScorerCore.serve`, what the agent calls): profile lookup + model scores + top-K,
   single requests and micro-batches of 16/64/256; p50/p99 per request (a batched request waits for
   its whole batch) and requests/s.
2. End to end: embedded broker, a synthetic 10k-item model registered as champion in a sqlite MLflow
   store, a real `advrec scorer` process; requests are produced with kafka-python and the
   recommendations consumed; latency = consumed − produced per request id. Run with
   `ADVREC_SCORER_BATCH_MAX=1` (single-request) and with the default micro-batching; paced at a
   moderate rate for latency, then a burst for requests/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.serving.core import Request, ScorerCore, ServingModel  # noqa: E402


def synthetic(n_users: int, n_items: int, dim: int, seen_per_user: int, seed: int = 0):
    """A random MF model with n_items items and a profile of seen items per user."""
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(n_users)]
    items = [f"i{i}" for i in range(n_items)]
    seen_u = np.repeat(np.arange(n_users, dtype=np.int64), seen_per_user)
    seen_i = rng.integers(0, n_items, n_users * seen_per_user)
    serving = ServingModel(
        1,
        users,
        items,
        rng.normal(0, 0.3, (n_users, dim)),
        rng.normal(0, 0.3, (n_items, dim)),
        np.unique((seen_u << 31) + seen_i),
    )
    profiles = {u: frozenset(items[j] for j in rng.integers(0, n_items, seen_per_user)) for u in users}
    return serving, profiles


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def in_process(n_users: int, n_items: int, dim: int, n_requests: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # as the scorer process does
    serving, profiles = synthetic(n_users, n_items, dim, 50)
    core = ScorerCore()
    core.swap(serving)
    rng = np.random.default_rng(1)
    requests = [Request(f"r{i}", f"u{rng.integers(0, n_users)}", 10) for i in range(n_requests)]
    core.serve(requests[:50], profiles.get)  # warm-up
    print(f"in-process ScorerCore.serve, top-10 over {n_items} items, dim {dim}, 50 seen + 50 profile items/user")
    for batch in (1, 8, 16, 32, 64, 256):
        per_request = []
        start = time.perf_counter()
        for lo in range(0, n_requests, batch):
            chunk = requests[lo : lo + batch]
            t0 = time.perf_counter()
            served, _ = core.serve(chunk, profiles.get)
            per_request += [time.perf_counter() - t0] * len(chunk)
            assert len(served) == len(chunk) and len(served[0].items) == 10
        rate = n_requests / (time.perf_counter() - start)
        print(
            f"  batch {batch:>3}: p50 {pct(per_request, 50):6.3f} ms  p99 {pct(per_request, 99):6.3f} ms  "
            f"{rate:9.0f} requests/s"
        )


def end_to_end(n_users: int, n_items: int, dim: int, paced: int, burst: int, rate: float) -> None:
    import pandas as pd
    import torch
    from kafka import KafkaConsumer, KafkaProducer

    from registry.model_registry import ModelRegistry
    from registry.promotion import GateConfig
    from streams.local.broker import EmbeddedBroker, free_port
    from streams.local.processes import AdvrecProcess
    from training.models import BPRRecommender

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="advrec-bench-scorer-"))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user": [f"u{x}" for x in np.repeat(np.arange(n_users), 20)],
            "item": [f"i{x}" for x in rng.integers(0, n_items, n_users * 20)],
        }
    )
    frame.loc[: n_items - 1, "item"] = [f"i{x}" for x in range(n_items)]  # every item present
    model = BPRRecommender(dim=dim, epochs=1).fit(frame)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    registry = ModelRegistry(uri, "advrec-recommender", GateConfig(min_eval_users=0), cache_dir=work / "cache")
    report = {"hr@10": 0.5, "ndcg@10": 0.3, "fgsm": {"0.25": {"ndcg@10": 0.28}}}  # synthetic: benchmark only
    registry.register_round(model, report, {"note": "benchmark"})
    print(f"\nend to end through Kafka (embedded Tansu broker, 1 scorer process, {len(model.items)} items)")
    with EmbeddedBroker(log_path=work / "tansu.log") as broker:
        for label, batch_max in (("single-request", "1"), ("micro-batched", "32")):
            app_id = f"bench{batch_max}"
            port = free_port()
            env = {
                "ADVREC_KAFKA_BOOTSTRAP": broker.bootstrap,
                "ADVREC_TANSU_WORKAROUNDS": "1",
                "ADVREC_APP_ID": app_id,
                "ADVREC_SCORER_METRICS_PORT": str(port),
                "ADVREC_MLFLOW_TRACKING_URI": uri,
                "ADVREC_DATA_DIR": str(work / app_id),
                "ADVREC_SCORER_BATCH_MAX": batch_max,
                "ADVREC_REC_REQUESTS_TOPIC": f"{app_id}.req",
                "ADVREC_RECOMMENDATIONS_TOPIC": f"{app_id}.rec",
                "ADVREC_TOPIC_PARTITIONS": "1",
            }
            scorer = AdvrecProcess(["scorer"], env, work / f"{app_id}.log").start()
            try:
                scorer.wait_http(f"http://127.0.0.1:{port}/metrics", 90)
                sent: dict[str, float] = {}
                got: dict[str, float] = {}
                consumer = KafkaConsumer(
                    f"{app_id}.rec",
                    bootstrap_servers=broker.bootstrap,
                    auto_offset_reset="earliest",
                    consumer_timeout_ms=100,
                    group_id=None,
                    fetch_max_wait_ms=5,
                )
                stop = threading.Event()

                def consume() -> None:
                    while not stop.is_set():
                        for message in consumer:
                            got.setdefault(json.loads(message.value)["request_id"], time.time())

                thread = threading.Thread(target=consume, daemon=True)
                thread.start()
                producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)

                def send(i: int) -> None:
                    user = f"u{rng.integers(0, n_users)}"
                    rid = f"{label}-{i}"
                    sent[rid] = time.time()
                    producer.send(
                        f"{app_id}.req",
                        key=user.encode(),
                        value=json.dumps({"request_id": rid, "user_id": user, "k": 10}).encode(),
                    )

                for i in range(200):  # warm-up: group join, first batches
                    send(-i - 1)
                producer.flush()
                deadline = time.monotonic() + 60
                while len(got) < 200 and time.monotonic() < deadline:
                    time.sleep(0.1)
                start = time.time()
                for i in range(paced):
                    while time.time() < start + i / rate:
                        time.sleep(0.0005)
                    send(i)
                    if i % 20 == 0:
                        producer.flush()
                producer.flush()
                ids = [f"{label}-{i}" for i in range(paced)]
                deadline = time.monotonic() + 120
                while not all(r in got for r in ids) and time.monotonic() < deadline:
                    time.sleep(0.1)
                lat = [got[r] - sent[r] for r in ids if r in got]
                print(
                    f"  {label:<14} paced {rate:.0f}/s: answered {len(lat)}/{paced}, "
                    f"p50 {pct(lat, 50):7.1f} ms  p99 {pct(lat, 99):7.1f} ms"
                )
                t0 = time.time()
                for i in range(paced, paced + burst):
                    send(i)
                producer.flush()
                ids = [f"{label}-{i}" for i in range(paced, paced + burst)]
                deadline = time.monotonic() + 180
                while not all(r in got for r in ids) and time.monotonic() < deadline:
                    time.sleep(0.05)
                done = max(got[r] for r in ids if r in got)
                print(
                    f"  {label:<14} burst of {burst}: answered {sum(r in got for r in ids)}, "
                    f"{burst / (done - t0):7.0f} requests/s (first produced → last consumed)"
                )
                stop.set()
                thread.join(5)
                consumer.close()
                producer.close()
            finally:
                scorer.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--requests", type=int, default=4_000, help="in-process requests per setting")
    ap.add_argument("--paced", type=int, default=1_000, help="end-to-end requests sent at --rate")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--burst", type=int, default=5_000)
    ap.add_argument("--no-kafka", action="store_true", help="only the in-process part")
    args = ap.parse_args()
    in_process(args.users, args.items, args.dim, args.requests)
    if not args.no_kafka:
        end_to_end(args.users, args.items, args.dim, args.paced, args.burst, args.rate)


if __name__ == "__main__":
    main()
