"""Scorer latency and throughput: top-10 over 10k items, inside the scorer and end to end through Kafka.

    .venv/bin/python benchmarks/scorer.py [--rate 2000] [--paced 6000] [--burst 10000] [--batch-max 1,32]
                                          [--engine auto|kafka|tansu] [--no-kafka]

1. In-process (`ScorerCore.serve`, what the agent calls): profile lookup + model scores + top-K,
   single requests and micro-batches; p50/p99 per request (a batched request waits for its whole
   batch), requests/s, and CPU µs per request (this thread's CPU time: what other processes on a
   shared machine do not inflate).
2. End to end: the embedded broker (Apache Kafka where Java runs), a synthetic 10k-item model
   registered as champion in a sqlite MLflow store, a real `advrec scorer` process per
   `ADVREC_SCORER_BATCH_MAX` setting; requests produced with kafka-python and the recommendations
   consumed in this process; latency = consumed - produced per request id. First paced at --rate
   (p50/p99 latency at that rate), then a burst (requests/s, first produced -> last consumed) with
   the scorer's CPU per request from its `process_cpu_seconds_total`.
3. The through-Kafka figures beside the in-process ones at the same batch bound, from this run.
"""

from __future__ import annotations

import argparse
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


def in_process(n_users: int, n_items: int, dim: int, n_requests: int, batches: list[int]) -> dict[int, dict]:
    """ScorerCore.serve alone, per batch size: latency percentiles, requests/s, CPU µs per request."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # as the scorer process does
    serving, profiles = synthetic(n_users, n_items, dim, 50)
    core = ScorerCore()
    core.swap(serving)
    rng = np.random.default_rng(1)
    requests = [Request(f"r{i}", f"u{rng.integers(0, n_users)}", 10) for i in range(n_requests)]
    core.serve(requests[:50], profiles.get)  # warm-up
    print(f"in-process ScorerCore.serve, top-10 over {n_items} items, dim {dim}, 50 seen + 50 profile items/user")
    out = {}
    for batch in batches:
        per_request = []
        start, cpu_start = time.perf_counter(), time.thread_time()
        for lo in range(0, n_requests, batch):
            chunk = requests[lo : lo + batch]
            t0 = time.perf_counter()
            served, _ = core.serve(chunk, profiles.get)
            per_request += [time.perf_counter() - t0] * len(chunk)
            assert len(served) == len(chunk) and len(served[0].items) == 10
        rate = n_requests / (time.perf_counter() - start)
        cpu_us = 1e6 * (time.thread_time() - cpu_start) / n_requests
        out[batch] = {"rate": rate, "cpu_us": cpu_us, "p99_ms": pct(per_request, 99)}
        print(
            f"  batch {batch:>3}: p50 {pct(per_request, 50):6.3f} ms  p99 {pct(per_request, 99):6.3f} ms  "
            f"{rate:9.0f} requests/s  {cpu_us:6.0f} CPU µs/request"
        )
    return out


def wait_answered(got: dict[str, float], ids: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(r in got for r in ids) and time.monotonic() < deadline:
        time.sleep(0.02)


def end_to_end(
    n_users: int,
    n_items: int,
    dim: int,
    paced: int,
    burst: int,
    rate: float,
    engine: str,
    batch_maxes: list[int],
    scorers: int = 1,
) -> dict[int, dict]:
    """`scorers` real `advrec scorer` processes (one group, one partition each) per setting of
    ADVREC_SCORER_BATCH_MAX: paced latency, burst rate, their CPU per request."""
    import pandas as pd
    import torch
    from kafka import KafkaConsumer, KafkaProducer

    from registry.model_registry import ModelRegistry
    from registry.promotion import GateConfig
    from streams.contract.records import Recommendation, RecommendationRequest, decode, encode
    from streams.local.broker import EmbeddedBroker, TansuBroker, free_port
    from streams.local.processes import AdvrecProcess, scrape_metrics
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
    out: dict[int, dict] = {}
    with EmbeddedBroker(work / "kafka", log_path=work / "broker.log", engine=engine) as broker:
        tansu = isinstance(broker, TansuBroker)
        print(
            f"\nend to end through Kafka (embedded {'Tansu' if tansu else 'Apache Kafka'} broker, "
            f"{scorers} scorer process(es), {len(model.items)} items; latency = consumed - produced, same clock)"
        )
        for batch_max in batch_maxes:
            label = "single-request" if batch_max == 1 else f"batches <={batch_max}"
            app_id = f"bench{batch_max}"
            ports = [free_port() for _ in range(scorers)]
            env = {
                "ADVREC_KAFKA_BOOTSTRAP": broker.bootstrap,
                "ADVREC_TANSU_WORKAROUNDS": "1" if tansu else "0",
                "ADVREC_APP_ID": app_id,
                "ADVREC_MLFLOW_TRACKING_URI": uri,
                "ADVREC_SCORER_BATCH_MAX": str(batch_max),
                "ADVREC_REC_REQUESTS_TOPIC": f"{app_id}.req",
                "ADVREC_RECOMMENDATIONS_TOPIC": f"{app_id}.rec",
                "ADVREC_TOPIC_PARTITIONS": str(scorers),
            }
            procs = [
                AdvrecProcess(
                    ["scorer"],
                    {**env, "ADVREC_SCORER_METRICS_PORT": str(port), "ADVREC_DATA_DIR": str(work / f"{app_id}-{n}")},
                    work / f"{app_id}-{n}.log",
                ).start()
                for n, port in enumerate(ports)
            ]
            metrics_urls = [f"http://127.0.0.1:{port}/metrics" for port in ports]

            def scorer_cpu() -> float:
                return sum(scrape_metrics(url)["process_cpu_seconds_total"] for url in metrics_urls)

            try:
                for proc, url in zip(procs, metrics_urls, strict=True):
                    proc.wait_http(url, 90)
                if scorers > 1:
                    time.sleep(15)  # let the group settle on one partition per member before the warm-up
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
                            got.setdefault(decode(message.value, Recommendation).request_id, time.time())

                thread = threading.Thread(target=consume, daemon=True)
                thread.start()
                producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)

                def send(i: int) -> None:
                    user = f"u{rng.integers(0, n_users)}"
                    rid = f"{label}-{i}"
                    sent[rid] = time.time()
                    producer.send(
                        f"{app_id}.req", key=user.encode(), value=encode(RecommendationRequest(rid, user, 10))
                    )

                for i in range(200):  # warm-up: group join, first batches
                    send(-i - 1)
                producer.flush()
                wait_answered(got, [f"{label}-{-i - 1}" for i in range(200)], 60)

                start = time.time()
                for i in range(paced):
                    while time.time() < start + i / rate:
                        time.sleep(0.0002)
                    send(i)
                producer.flush()
                sent_rate = paced / (time.time() - start)
                ids = [f"{label}-{i}" for i in range(paced)]
                wait_answered(got, ids, 120)
                lat = [got[r] - sent[r] for r in ids if r in got]
                paced_rate = len(lat) / (max(got[r] for r in ids if r in got) - start)

                cpu_before = scorer_cpu()
                t0 = time.time()
                for i in range(paced, paced + burst):
                    send(i)
                producer.flush()
                ids = [f"{label}-{i}" for i in range(paced, paced + burst)]
                wait_answered(got, ids, 180)
                done = max(got[r] for r in ids if r in got)
                cpu_us = 1e6 * (scorer_cpu() - cpu_before) / burst
                burst_rate = sum(r in got for r in ids) / (done - t0)
                out[batch_max] = {
                    "paced_rate": paced_rate,
                    "p50_ms": pct(lat, 50),
                    "p99_ms": pct(lat, 99),
                    "burst_rate": burst_rate,
                    "cpu_us": cpu_us,
                }
                print(
                    f"  {label:<14} paced at {rate:.0f}/s (sent {sent_rate:.0f}/s): answered {len(lat)}/{paced} "
                    f"at {paced_rate:.0f}/s, p50 {pct(lat, 50):7.1f} ms  p99 {pct(lat, 99):7.1f} ms"
                )
                print(
                    f"  {label:<14} burst of {burst}: answered {sum(r in got for r in ids)}, "
                    f"{burst_rate:7.0f} requests/s (first produced -> last consumed), "
                    f"scorer CPU {cpu_us:.0f} µs/request"
                )
                stop.set()
                thread.join(5)
                consumer.close()
                producer.close()
            finally:
                for proc in procs:
                    proc.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--requests", type=int, default=4_000, help="in-process requests per setting")
    ap.add_argument("--paced", type=int, default=6_000, help="end-to-end requests sent at --rate")
    ap.add_argument("--rate", type=float, default=2_000.0)
    ap.add_argument("--burst", type=int, default=10_000)
    ap.add_argument("--scorers", type=int, default=1, help="scorer processes (and request partitions)")
    ap.add_argument("--batch-max", default="1,32", help="ADVREC_SCORER_BATCH_MAX settings to run end to end")
    ap.add_argument(
        "--engine", default="auto", help="embedded broker: auto (Apache Kafka where Java runs), kafka, tansu"
    )
    ap.add_argument("--no-kafka", action="store_true", help="only the in-process part")
    args = ap.parse_args()
    batch_maxes = [int(b) for b in args.batch_max.split(",")]
    inside = in_process(args.users, args.items, args.dim, args.requests, sorted({1, 8, 16, 32, 64, 256, *batch_maxes}))
    if args.no_kafka:
        return
    through = end_to_end(
        args.users, args.items, args.dim, args.paced, args.burst, args.rate, args.engine, batch_maxes, args.scorers
    )
    print(
        "\nthrough Kafka beside in-process, same run, same batch bound "
        "(goal: >= 2000 requests/s through Kafka, p99 <= 50 ms at 2000/s):"
    )
    for batch_max, kafka in through.items():
        alone = inside[batch_max]
        print(
            f"  batch <={batch_max:>3}: {kafka['burst_rate']:6.0f} vs {alone['rate']:6.0f} requests/s "
            f"(ratio {kafka['burst_rate'] / alone['rate']:.2f}); CPU {kafka['cpu_us']:5.0f} vs "
            f"{alone['cpu_us']:4.0f} µs/request; at {args.rate:.0f}/s paced: p99 {kafka['p99_ms']:.1f} ms"
        )


if __name__ == "__main__":
    main()
