"""Scorer latency and throughput: top-10 over 10k items, inside the scorer and end to end through Kafka.

    .venv/bin/python benchmarks/scorer.py [--rate 2000] [--warm-s 5] [--paced 20000] [--burst 10000]
                                          [--batch-max 1,32] [--fetch-wait-ms 0,5] [--swap-s 6]
                                          [--engine auto|kafka|tansu] [--new-profile-items 5] [--no-kafka]

1. In-process (`ScorerCore.serve`, what the agent calls): profile lookup + model scores + top-K,
   each user ranked by its profile (50 items, not the 50 it trained on: its row is stale),
   single requests and micro-batches; p50/p99 per request (a batched request waits for its whole
   batch), requests/s, and CPU µs per request (this thread's CPU time: what other processes on a
   shared machine do not inflate).
2. End to end: the embedded broker (Apache Kafka where Java runs), a synthetic 10k-item model
   registered as champion in a sqlite MLflow store, every user's profile on the profiles changelog
   (its 20 trained items and --new-profile-items more: ranked by its profile, as most users are
   between two rounds; 0: by its trained row), a real `advrec scorer` process per
   `ADVREC_SCORER_BATCH_MAX` setting; requests produced and the recommendations consumed in this
   process by one asyncio client (aiokafka); latency = consumed - produced per request id, split at
   the answer's `served_at`. After the group join, --warm-s seconds paced at --rate (the scorer's
   first seconds of load: its p99 is printed on its own), then --paced requests at --rate
   (p50/p99 latency at that rate, the scorer's CPU per request), then a burst (requests/s, first
   produced -> last consumed) with the scorer's CPU per request from its
   `process_cpu_seconds_total`; with --swap-s, paced load again while a second model version
   becomes champion (latency around the first answer of the new version). Baselines: the same
   client's own produce -> consume round trip at the same rate through the same broker, and
   (unless --no-echo) the scorer's own app answering every request with an empty list
   (`benchmarks/scorer_echo.py`: Kafka and Faust without the model's work), last, at the first
   batch bound. The first setting runs once before the measured ones, so the broker has served this traffic before, as a
   long-running one has (its figures are printed too, marked as the broker's warm-up;
   --no-broker-warm-up skips it).
3. The through-Kafka figures beside the in-process ones at the same batch bound, from this run.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import process_cpu_s  # noqa: E402

from streams.local.processes import AdvrecProcess  # noqa: E402
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


class Client:
    """The load: one asyncio loop (aiokafka) that paces requests and stamps answers as they arrive.

    A threaded kafka-python client on this machine adds ~25 ms p50 and up to ~100 ms p99 to a bare
    round trip (its sender thread and the pacing loop contend); the asyncio client adds ~5 / ~25 ms,
    printed by `round_trip` as the baseline of the same run.
    """

    def __init__(self, bootstrap: str, request_topic: str, answer_topic: str, decode_id) -> None:
        self.bootstrap, self.request_topic, self.answer_topic = bootstrap, request_topic, answer_topic
        self.decode_id = decode_id  # answer bytes -> (request id, served_at or None, model version or None)
        self.sent: dict[str, float] = {}
        self.got: dict[str, float] = {}
        self.served: dict[str, float] = {}
        self.versions: dict[str, int | None] = {}

    async def __aenter__(self) -> Client:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0)
        self.consumer = AIOKafkaConsumer(
            self.answer_topic, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=5
        )
        await self.producer.start()
        await self.consumer.start()
        self.task = asyncio.create_task(self._consume())
        return self

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await self.consumer.stop()
        await self.producer.stop()

    async def _consume(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=50)
            now = time.time()
            for messages in batches.values():
                for message in messages:
                    rid, served_at, version = self.decode_id(message.value)
                    self.versions.setdefault(rid, version)
                    self.got.setdefault(rid, now)
                    if served_at is not None:
                        self.served.setdefault(rid, served_at)

    async def send(self, rid: str, key: bytes, value: bytes) -> None:
        self.sent[rid] = time.time()
        await self.producer.send(self.request_topic, key=key, value=value)

    async def paced(self, messages: list[tuple[str, bytes, bytes]], rate: float) -> float:
        """Send at `rate`/s (each at its slot, not in bursts); the rate achieved."""
        start = time.time()
        for i, (rid, key, value) in enumerate(messages):
            delay = start + i / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.send(rid, key, value)
        await self.producer.flush()
        return len(messages) / (time.time() - start)

    async def answered(self, ids: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(r in self.got for r in ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


async def round_trip(bootstrap: str, topic: str, n: int, rate: float) -> list[float]:
    """The client alone: produce to a topic and consume it back at `rate`, latency per message (s)."""
    async with Client(bootstrap, topic, topic, lambda value: (value.decode(), None, None)) as client:
        await client.paced([(f"w{i}", b"k", f"w{i}".encode()) for i in range(50)], rate)
        await client.answered([f"w{i}" for i in range(50)], 30)
        ids = [f"m{i}" for i in range(n)]
        await client.paced([(rid, b"k", rid.encode()) for rid in ids], rate)
        await client.answered(ids, 60)
        return [client.got[r] - client.sent[r] for r in ids if r in client.got]


class EchoProcess(AdvrecProcess):
    """`benchmarks/scorer_echo.py` in place of `advrec scorer`: the same environment, log and stop."""

    def command(self) -> list[str]:
        return [sys.executable, str(Path(__file__).with_name("scorer_echo.py"))]


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
    warm_s: float = 5.0,
    fetch_waits: tuple[int, ...] = (0,),
    swap_s: float = 0.0,
    broker_warm_up: bool = True,
    new_profile_items: int = 5,
    echo: bool = True,
) -> tuple[dict[tuple[int, int, int], dict], dict]:
    """`scorers` real `advrec scorer` processes (one group, one partition each) per setting of
    ADVREC_SCORER_BATCH_MAX (and of ADVREC_SCORER_FETCH_WAIT_MS, in turn): paced latency, burst
    rate, their CPU per request; and the client's own round trip through the same broker at the
    same rate (the baseline). Every user has a profile on the scorer's profiles changelog: its 20
    trained items and `new_profile_items` more (> 0: its row is stale, and it is ranked by its
    profile, as most users are between two rounds; 0: by its trained row). With `echo`, the
    scorer's app answering empty lists runs last at the first batch bound (`baseline["echo"]`)."""
    import pandas as pd
    import torch
    from kafka import KafkaProducer
    from mlflow import MlflowClient

    from registry.model_registry import ModelRegistry
    from registry.promotion import GateConfig
    from streams.contract.records import Recommendation, RecommendationRequest, decode, encode
    from streams.kafka.topics import ensure_topics
    from streams.local.broker import EmbeddedBroker, TansuBroker, free_port
    from streams.local.processes import scrape_metrics
    from training.models import BPRRecommender

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="advrec-bench-scorer-"))
    atexit.register(shutil.rmtree, work, True)  # the broker's data and the store: ~100 MB a run
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
    version, decision = registry.register_round(model, report, {"note": "benchmark"})
    if not decision.promoted:  # a synthetic report has no same-ground measurement: promote by hand, as ops can
        registry.promote(version)

    swap_to, champion = None, version
    if swap_s:  # a second version, promoted during the swap run (the scorer polls the alias every second)
        swap_to, decision = registry.register_round(model, report, {"note": "benchmark: the swap"})
        if decision.promoted:
            registry.promote(version)

    profiles = {
        user: group["item"].tolist() + [f"i{x}" for x in rng.integers(0, n_items, new_profile_items)]
        for user, group in frame.groupby("user", sort=False)
    }

    def write_profiles(bootstrap: str, topic: str, partitions: int) -> None:
        """Every user's profile on the changelog the scorer tails (as the worker writes it)."""
        ensure_topics(bootstrap, [topic], partitions)
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
        for user, items in profiles.items():
            producer.send(topic, key=user.encode(), value=json.dumps({"user_id": user, "items": items}).encode())
        producer.flush()
        producer.close()

    def answer_id(value: bytes) -> tuple[str, float, int]:
        answer = decode(value, Recommendation)
        return answer.request_id, answer.served_at, answer.model_version

    def request(label: str, i: int) -> tuple[str, bytes, bytes]:
        user = f"u{rng.integers(0, n_users)}"
        rid = f"{label}-{i}"
        return rid, user.encode(), encode(RecommendationRequest(rid, user, 10))

    out: dict[tuple[int, int, int], dict] = {}
    echoed: dict | None = None
    with EmbeddedBroker(work / "kafka", log_path=work / "broker.log", engine=engine) as broker:
        tansu = isinstance(broker, TansuBroker)
        print(
            f"\nend to end through Kafka (embedded {'Tansu' if tansu else 'Apache Kafka'} broker, "
            f"{scorers} scorer process(es), {len(model.items)} items; latency = consumed - produced, same clock)"
        )
        bare = asyncio.run(round_trip(broker.bootstrap, "bench-round-trip", paced, rate))
        baseline = {"p50_ms": pct(bare, 50), "p99_ms": pct(bare, 99)}
        print(
            f"  the client alone (produce -> consume, no scorer) at {rate:.0f}/s: "
            f"p50 {baseline['p50_ms']:.1f} ms  p99 {baseline['p99_ms']:.1f} ms"
        )

        def broker_cpu_s() -> float:
            return process_cpu_s(broker.pid) if broker.pid is not None else float("nan")

        settings = [(b, w, False) for b in batch_maxes for w in fetch_waits]
        # A broker that has not served this traffic yet spends a third to a half more CPU per request
        # on it (278-284 against 194-211 µs in two runs; its JIT, most likely), and on 2 cores that
        # costs the scorer its p99: the setting measured first in a run had the
        # worst p99 in every run of the same setting twice. A long-running broker is warm, so the
        # first setting runs once more before the measured ones; its figures are printed, apart.
        warm_up = [settings[0]] if broker_warm_up else []
        echoes = [(batch_maxes[0], fetch_waits[0], True)] if echo else []
        for n_setting, (batch_max, wait_ms, empty) in enumerate(warm_up + settings + echoes):
            label = "single-request" if batch_max == 1 else f"batches <={batch_max}"
            label += f", fetch wait {wait_ms} ms" if wait_ms else ""
            if n_setting < len(warm_up):
                label += " (the broker's warm-up)"
            elif settings.count((batch_max, wait_ms, empty)) > 1:  # a setting run again (to see the order's effect)
                label += f" (#{n_setting - len(warm_up) + 1})"
            if empty:
                label += ", empty answers (scorer_echo.py)"
            app_id = f"bench{batch_max}w{wait_ms}n{n_setting}"
            ports = [free_port() for _ in range(scorers)]
            env = {
                "ADVREC_KAFKA_BOOTSTRAP": broker.bootstrap,
                "ADVREC_TANSU_WORKAROUNDS": "1" if tansu else "0",
                "ADVREC_APP_ID": app_id,
                "ADVREC_MLFLOW_TRACKING_URI": uri,
                "ADVREC_SCORER_BATCH_MAX": str(batch_max),
                "ADVREC_SCORER_FETCH_WAIT_MS": str(wait_ms),
                "ADVREC_SCORER_POLL_SECONDS": "1" if swap_s else "30",
                "ADVREC_REC_REQUESTS_TOPIC": f"{app_id}.req",
                "ADVREC_RECOMMENDATIONS_TOPIC": f"{app_id}.rec",
                "ADVREC_TOPIC_PARTITIONS": str(scorers),
            }
            write_profiles(broker.bootstrap, f"{app_id}-profiles-changelog", scorers)
            procs = [
                (EchoProcess if empty else AdvrecProcess)(
                    ["scorer"],
                    {**env, "ADVREC_SCORER_METRICS_PORT": str(port), "ADVREC_DATA_DIR": str(work / f"{app_id}-{n}")},
                    work / f"{app_id}-{n}.log",
                ).start()
                for n, port in enumerate(ports)
            ]
            metrics_urls = [f"http://127.0.0.1:{port}/metrics" for port in ports]

            def scorer_cpu() -> float:
                return sum(scrape_metrics(url)["process_cpu_seconds_total"] for url in metrics_urls)

            async def swap_run(client: Client) -> dict:
                """Paced load for `swap_s` s with the other version made champion after 1 s: latency around the swap."""
                nonlocal champion
                target = swap_to if champion == version else version  # each setting's scorer swaps once
                requests = [request(f"{label}-swap", i) for i in range(int(swap_s * rate))]
                ids = [rid for rid, _, _ in requests]
                pacing = asyncio.create_task(client.paced(requests, rate))
                await asyncio.sleep(1.0)
                # the alias alone (what a promotion from another machine does here): `registry.promote`
                # would load the version in this process first, and this process is the measuring client
                await asyncio.to_thread(
                    MlflowClient(uri).set_registered_model_alias, "advrec-recommender", "champion", target
                )
                champion = target
                await pacing
                await client.answered(ids, 120)
                new = [client.served[r] for r in ids if client.versions.get(r) == target]
                if not new:
                    return {"swap_to": target, "swap_s": None}
                swapped = min(new)  # the first answer of the new version
                near = [
                    client.got[r] - client.sent[r] for r in ids if r in client.got and abs(client.sent[r] - swapped) < 2
                ]
                return {
                    "swap_to": target,
                    "swap_s": swapped - client.sent[ids[0]],
                    "swap_p99_ms": pct(near, 99),
                    "swap_max_ms": 1000 * max(near),
                }

            async def drive() -> dict:
                async with Client(broker.bootstrap, f"{app_id}.req", f"{app_id}.rec", answer_id) as client:
                    warm = [request(label, -i - 1) for i in range(200)]  # group join, first batches
                    await client.paced(warm, rate)
                    await client.answered([rid for rid, _, _ in warm], 60)
                    first = [request(label, -i - 1) for i in range(len(warm), len(warm) + int(warm_s * rate))]
                    await client.paced(first, rate)
                    await client.answered([rid for rid, _, _ in first], 60)
                    first_lat = [client.got[r] - client.sent[r] for r, _, _ in first if r in client.got]
                    ids = [f"{label}-{i}" for i in range(paced)]
                    start, paced_cpu, broker_cpu = time.time(), scorer_cpu(), broker_cpu_s()
                    sent_rate = await client.paced([request(label, i) for i in range(paced)], rate)
                    await client.answered(ids, 120)
                    paced_cpu, broker_cpu = scorer_cpu() - paced_cpu, broker_cpu_s() - broker_cpu
                    answered = [r for r in ids if r in client.got]
                    lat = [client.got[r] - client.sent[r] for r in answered]
                    to_scorer = [client.served[r] - client.sent[r] for r in answered]
                    to_client = [client.got[r] - client.served[r] for r in answered]
                    paced_rate = len(lat) / (max(client.got[r] for r in answered) - start)
                    cpu_before, t0 = scorer_cpu(), time.time()
                    ids = [f"{label}-{i}" for i in range(paced, paced + burst)]
                    for rid, key, value in (request(label, i) for i in range(paced, paced + burst)):
                        await client.send(rid, key, value)
                    await client.producer.flush()
                    await client.answered(ids, 180)
                    done = [client.got[r] for r in ids if r in client.got]
                    burst_cpu = scorer_cpu() - cpu_before
                    swap = await swap_run(client) if swap_to is not None else {}
                    return {
                        **swap,
                        "sent_rate": sent_rate,
                        "answered": len(lat),
                        "paced_rate": paced_rate,
                        "p50_ms": pct(lat, 50),
                        "p99_ms": pct(lat, 99),
                        "over_50ms": sum(x > 0.05 for x in lat) / len(lat),
                        "paced_cpu_us": 1e6 * paced_cpu / paced,
                        "paced_broker_cpu_us": 1e6 * broker_cpu / paced,
                        "first_p99_ms": pct(first_lat, 99) if first_lat else float("nan"),
                        "to_scorer_ms": (pct(to_scorer, 50), pct(to_scorer, 99)),
                        "to_client_ms": (pct(to_client, 50), pct(to_client, 99)),
                        "burst_answered": len(done),
                        "burst_rate": len(done) / (max(done) - t0),
                        "cpu_us": 1e6 * burst_cpu / burst,
                    }

            try:
                for proc, url in zip(procs, metrics_urls, strict=True):
                    proc.wait_http(url, 90)
                for port in ports:  # every profile read before the load
                    model_url = f"http://127.0.0.1:{port}/model"
                    deadline = time.time() + 60
                    while json.loads(urllib.request.urlopen(model_url).read()).get("profiles", 0) < len(profiles):
                        if time.time() > deadline:
                            raise TimeoutError(f"{model_url}: the profiles were not read in 60 s")
                        time.sleep(0.5)
                if scorers > 1:
                    time.sleep(15)  # let the group settle on one partition per member before the warm-up
                r = asyncio.run(drive())
                if empty:
                    echoed = r
                elif n_setting >= len(warm_up):
                    out[batch_max, wait_ms, n_setting] = r
                print(
                    f"  {label:<14} paced at {rate:.0f}/s (sent {r['sent_rate']:.0f}/s): answered "
                    f"{r['answered']}/{paced} at {r['paced_rate']:.0f}/s, p50 {r['p50_ms']:7.1f} ms  "
                    f"p99 {r['p99_ms']:7.1f} ms ({100 * r['over_50ms']:.1f} % over 50 ms), "
                    f"scorer CPU {r['paced_cpu_us']:.0f} µs/request, broker {r['paced_broker_cpu_us']:.0f}"
                )
                print(
                    f"  {'':<14} the {warm_s:.0f} s before it (the scorer's first load): p99 {r['first_p99_ms']:.1f} ms"
                )
                print(
                    f"  {'':<14} of which request produced -> answer served p50 {r['to_scorer_ms'][0]:.1f} ms "
                    f"p99 {r['to_scorer_ms'][1]:.1f} ms; served -> consumed p50 {r['to_client_ms'][0]:.1f} ms "
                    f"p99 {r['to_client_ms'][1]:.1f} ms"
                )
                if swap_to is not None:
                    if r["swap_s"] is None:
                        print(f"  {'':<14} model swap: version {r['swap_to']} was not served within the run")
                    else:
                        print(
                            f"  {'':<14} model swap to version {r['swap_to']}, first served {r['swap_s']:.1f} s "
                            f"into the run: p99 {r['swap_p99_ms']:.1f} ms, max {r['swap_max_ms']:.0f} ms "
                            "over the requests sent within 2 s of it"
                        )
                print(
                    f"  {label:<14} burst of {burst}: answered {r['burst_answered']}, "
                    f"{r['burst_rate']:7.0f} requests/s (first produced -> last consumed), "
                    f"scorer CPU {r['cpu_us']:.0f} µs/request"
                )
            finally:
                for proc in procs:
                    proc.stop()
    return out, {**baseline, "echo": echoed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--requests", type=int, default=4_000, help="in-process requests per setting")
    ap.add_argument("--warm-s", type=float, default=5.0, help="seconds of load at --rate before the paced run")
    ap.add_argument("--paced", type=int, default=20_000, help="end-to-end requests sent at --rate")
    ap.add_argument("--rate", type=float, default=2_000.0)
    ap.add_argument("--burst", type=int, default=10_000)
    ap.add_argument("--scorers", type=int, default=1, help="scorer processes (and request partitions)")
    ap.add_argument("--batch-max", default="1,32", help="ADVREC_SCORER_BATCH_MAX settings to run end to end")
    ap.add_argument(
        "--fetch-wait-ms", default="0", help="ADVREC_SCORER_FETCH_WAIT_MS settings to run with each, e.g. 0,5"
    )
    ap.add_argument(
        "--engine", default="auto", help="embedded broker: auto (Apache Kafka where Java runs), kafka, tansu"
    )
    ap.add_argument(
        "--swap-s",
        type=float,
        default=0.0,
        help="after the burst, this many seconds paced at --rate with a second model version promoted after 1 s",
    )
    ap.add_argument(
        "--no-broker-warm-up",
        action="store_true",
        help="measure from the broker's first scorer (by default the first setting runs once more before, apart)",
    )
    ap.add_argument(
        "--new-profile-items",
        type=int,
        default=5,
        help="items in each user's profile beyond its 20 trained ones (0: every user is ranked by its trained row)",
    )
    ap.add_argument("--no-kafka", action="store_true", help="only the in-process part")
    ap.add_argument("--no-echo", action="store_true", help="skip the scorer's app answering empty lists")
    args = ap.parse_args()
    batch_maxes = [int(b) for b in args.batch_max.split(",")]
    inside = in_process(args.users, args.items, args.dim, args.requests, sorted({1, 8, 16, 32, 64, 256, *batch_maxes}))
    if args.no_kafka:
        return
    through, baseline = end_to_end(
        args.users,
        args.items,
        args.dim,
        args.paced,
        args.burst,
        args.rate,
        args.engine,
        batch_maxes,
        args.scorers,
        args.warm_s,
        tuple(int(w) for w in args.fetch_wait_ms.split(",")),
        args.swap_s,
        not args.no_broker_warm_up,
        args.new_profile_items,
        not args.no_echo,
    )
    print(
        "\nthrough Kafka beside in-process, same run, same batch bound "
        "(goal: >= 2000 requests/s through Kafka, p99 <= 50 ms at 2000/s):"
    )
    for (batch_max, wait_ms, _), kafka in through.items():
        alone = inside[batch_max]
        setting = f"batch <={batch_max:>3}" + (f", fetch wait {wait_ms} ms" if wait_ms else "")
        print(
            f"  {setting}: {kafka['burst_rate']:6.0f} vs {alone['rate']:6.0f} requests/s "
            f"(ratio {kafka['burst_rate'] / alone['rate']:.2f}); CPU {kafka['cpu_us']:5.0f} vs "
            f"{alone['cpu_us']:4.0f} µs/request; at {args.rate:.0f}/s paced: p50 {kafka['p50_ms']:.1f} ms, "
            f"p99 {kafka['p99_ms']:.1f} ms, {kafka['paced_cpu_us']:.0f} µs/request"
            f" (the client alone: {baseline['p99_ms']:.1f} ms)"
        )

    echo = baseline["echo"]
    if echo is not None:
        print(
            f"  the same app answering empty lists, batch <={batch_maxes[0]:>3}: {echo['burst_rate']:6.0f} requests/s "
            f"burst; CPU {echo['cpu_us']:5.0f} µs/request; at {args.rate:.0f}/s paced: p50 {echo['p50_ms']:.1f} ms, "
            f"p99 {echo['p99_ms']:.1f} ms, {echo['paced_cpu_us']:.0f} µs/request"
        )


if __name__ == "__main__":
    main()
