"""Ingest throughput: events/s through the advrec worker vs a bare aiokafka consumer, same topic, same run.

    .venv/bin/python benchmarks/ingest.py [--events 200000] [--source sim|movielens|taobao] [--engines kafka,tansu]
        [--envelope 100] [--peer-python /path/to/python-with-quixstreams] [--repeat 3] [--workers 1,2,4]
        [--detector-process] [--windows-process] [--timeline]

For each embedded broker engine (Apache Kafka, and Tansu, the fallback without Java), starts the
broker, preloads the topic, then (1) drains it with a bare aiokafka consumer that only counts
records, (2) with a bare Faust agent that takes batches and does nothing (stock Faust, and run as
advrec runs its Faust apps: its patches of Faust, GC and logger settings), and (3) runs a real
`advrec worker` process (validation, dead letters, profile + popularity tables with changelogs,
fraud detection, windows) on it, timing from its first processed event until every stage (ingest,
the fraud detector, the item table, the windows: `advrec_stage_events_total`) has taken in the
last, by polling its /metrics. Prints the rates and their ratios per engine, and the broker's start time. Then, on the
first engine, (4) the same events sent as envelopes (JSON arrays of `--envelope` events per message,
as `advrec produce --envelope` sends them) through a fresh worker on the same broker (after the
figures above: its JIT warm), drained from a preloaded topic like the figures above (`--repeat` runs,
medians), and live (sent while a second fresh worker runs), and (5) with `--peer-python`, the peer
a user would pick instead: a quix-streams app with a per-user stateful count (RocksDB state,
changelog), on the same topic of single-event messages; (6) with `--workers 1,2,...`, scale-out:
the envelopes sent live to that many workers in one consumer group (each count on a fresh topic).
With `--detector-process` every worker run has the fraud detector in its own process (`advrec
detector`, `ADVREC_FRAUD_IN_WORKER=false`): its CPU is added to the workers' and the clock waits
for it as for any stage; with `--windows-process` likewise the window sink (`advrec windows`,
`ADVREC_WINDOWS_IN_WORKER=false`). With `--timeline` it prints, every 0.25 s of the median drained envelope
run, the cores each process used (workers, detector, broker): when each stage works and waits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.kafka.partitioner import watermark_key  # noqa: E402
from streams.kafka.producer import send_raw  # noqa: E402
from streams.kafka.topics import ensure_topics  # noqa: E402
from streams.local.broker import EmbeddedBroker, KafkaBroker, TansuBroker, free_port  # noqa: E402
from streams.local.processes import AdvrecProcess, metric_total, scrape_metrics  # noqa: E402
from streams.sources.datasets import movielens_events, taobao_events  # noqa: E402
from streams.sources.simulator import simulated_events  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TIMELINE_STEP_S = 0.25  # `--timeline`: how often each process's CPU is read

# The stages that can run in a process of their own: (what, command and role, the worker setting
# that sends them there when false, the setting of their /metrics port).
STAGES_APART = (
    ("fraud detector", "detector", "ADVREC_FRAUD_IN_WORKER", "ADVREC_DETECTOR_WEB_PORT"),
    ("window sink", "windows", "ADVREC_WINDOWS_IN_WORKER", "ADVREC_WINDOWS_WEB_PORT"),
)


def load_events(source: str, n: int):
    if source == "movielens":
        return list(islice(movielens_events(DATA / "movielens-100k" / "u.data"), n))
    if source == "taobao":
        return list(islice(taobao_events(DATA / "taobao-userbehavior-flink-subset" / "UserBehavior.csv"), n))
    return list(simulated_events(n_events=n, n_users=5_000, n_items=2_000, seed=1))


async def bare_consumer_rate(bootstrap: str, topic: str, total: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"bare-{time.time()}",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if started is None and batches:
                started = time.perf_counter()
            seen += sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - started)


def bare_faust_rate(bootstrap: str, topic: str, total: int, as_advrec: bool = False) -> float:
    """Events/s of a Faust agent that does nothing; `as_advrec`: run as advrec runs its Faust apps."""
    import subprocess

    script = Path(__file__).with_name("bare_faust_agent.py")
    mode = ["advrec"] if as_advrec else []
    out = subprocess.run(
        [sys.executable, str(script), bootstrap, topic, str(total), str(free_port()), *mode],
        capture_output=True,
        text=True,
        timeout=600,
    )
    rates = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("rate ")]
    if not rates:
        raise RuntimeError(f"bare Faust agent printed no rate:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return float(rates[0])


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def apart(env: dict, setting: str) -> bool:
    """Whether the worker's settings put a stage in its own process (its `STAGES_APART` setting false).

    The value is read as Settings reads it (pydantic's bool), so the benchmark and the worker agree.
    """
    from pydantic import TypeAdapter

    return not TypeAdapter(bool).validate_python(env.get(setting, "true"))


class WorkerRun(NamedTuple):
    """One timed worker run: events/s (wall), CPU µs/event of the worker processes (and the
    detector's, when it runs apart), their last metrics summed, and CPU µs/event by process role
    (`workers`, `detector`, and `broker` when its pid is given: not in `cpu`)."""

    rate: float
    cpu: float
    samples: dict
    cpu_by_role: dict[str, float]
    # with `timeline`: (seconds since the clock started, cores each role used over the step before)
    timeline: tuple[tuple[float, dict[str, float]], ...] = ()
    clock_s: float = 0.0  # seconds from the first processed event to the last stage's last intake


def worker_run(
    bootstrap: str,
    topic: str,
    total: int,
    workdir: Path,
    env_extra: dict,
    tansu: bool = False,
    feed=None,
    workers: int = 1,
    broker_pid: int | None = None,
    timeline: bool = False,
) -> WorkerRun:
    """The worker processes from the first processed event until every stage (ingest, the fraud
    detector, the item table, the windows) has taken in the last.

    With `feed` (a function that sends the inputs), the workers start on an empty topic and the
    clock starts when `feed` is called, once every worker holds partitions (each has processed a
    primer): the figure then includes the producer's time, a conservative one. `workers` > 1 (one
    consumer group, as `advrec worker` scales out) needs `feed`: on a preloaded topic the first
    worker would start before the others join and the group would rebalance mid-run. With
    `ADVREC_FRAUD_IN_WORKER=false` in `env_extra` an `advrec detector` process runs beside the
    workers, and its CPU and metrics are counted with theirs. `timeline`: each role's CPU is also
    read every `TIMELINE_STEP_S` from the processes' start to the end (where the cores go, and when).
    """
    if workers > 1 and feed is None:
        raise ValueError("several workers need `feed`: they must all hold partitions before the clock starts")
    app_id = f"bench-{time.time()}"
    processes, urls, roles = [], [], []

    def start(command: str, name: str, port_setting: str, role: str) -> None:
        port = free_port()
        env = {
            "ADVREC_KAFKA_BOOTSTRAP": bootstrap,
            "ADVREC_TANSU_WORKAROUNDS": "1" if tansu else "0",
            "ADVREC_EVENTS_TOPIC": topic,
            "ADVREC_APP_ID": app_id,
            port_setting: str(port),
            "ADVREC_DATA_DIR": str(workdir / name),
            **env_extra,
        }
        processes.append(AdvrecProcess([command], env, workdir / f"{name}.log").start())
        urls.append(f"http://127.0.0.1:{port}/metrics")
        roles.append(role)

    for n in range(workers):
        start("worker", f"worker{n}", "ADVREC_WEB_PORT", "workers")
    worker_urls = list(urls)
    for _, command, setting, port_setting in STAGES_APART:  # their metrics and CPU count with the workers'
        if apart(env_extra, setting):
            start(command, command, port_setting, command)

    def scrape() -> dict:
        summed: dict = {}
        for url in urls:
            for name, value in scrape_metrics(url, timeout_s=30).items():
                summed[name] = summed.get(name, 0.0) + value
        return summed

    def cpu_by_role() -> dict[str, float]:
        out: dict[str, float] = {}
        for role, p in zip(roles, processes):
            out[role] = out.get(role, 0.0) + process_cpu_s(p.process.pid)
        if broker_pid is not None:
            out["broker"] = process_cpu_s(broker_pid)
        return out

    def ours(by_role: dict[str, float]) -> float:
        """CPU seconds of the worker processes and the detector: the broker's is not the worker's."""
        return sum(cpu for role, cpu in by_role.items() if role != "broker")

    samples_cpu: list[tuple[float, dict[str, float]]] = []
    sampling = threading.Event()

    def sample_cpu() -> None:
        while not sampling.wait(TIMELINE_STEP_S):
            try:
                samples_cpu.append((time.perf_counter(), cpu_by_role()))
            except OSError:  # a process has ended: the run is over
                return

    try:
        if timeline:
            samples_cpu.append((time.perf_counter(), cpu_by_role()))
            threading.Thread(target=sample_cpu, daemon=True).start()
        for process, url in zip(processes, urls):
            process.wait_http(url)
        first = None
        if feed is not None:
            # one primer event per partition: once each worker has processed one, every worker
            # holds its partitions and is warm
            primers = []
            for partition in range(4):
                key = watermark_key(partition, 4).decode()  # a key the default partitioner maps there
                event = {"event_id": key, "user_id": key, "item_id": "i0", "type": "click", "ts": time.time()}
                primers.append((key.encode(), json.dumps(event).encode()))
            send_raw(bootstrap, topic, primers)
            while not all(
                metric_total(scrape_metrics(url), "advrec_events_processed_total") >= 1 for url in worker_urls
            ):
                time.sleep(0.1)
            while metric_total(scrape(), "advrec_events_processed_total") < len(primers):
                time.sleep(0.1)
            total += len(primers)
            first = (time.perf_counter(), float(len(primers)), cpu_by_role())
            threading.Thread(target=feed, daemon=True).start()
        while True:
            try:
                samples = scrape()
            except TimeoutError:
                print("  (a worker's /metrics took over 30 s to answer)", file=sys.stderr)
                continue
            done = sum(
                metric_total(samples, name)
                for name in (
                    "advrec_events_processed_total",
                    "advrec_dead_letters_total",
                    "advrec_events_duplicate_total",
                )
            )
            # Done when every stage downstream of ingest (each agent exports its own) has taken in
            # every valid event too: ingest alone can run ahead of the detector, the item table and
            # the windows, and they share the worker's one core.
            valid = metric_total(samples, "advrec_events_processed_total")
            behind = [k for k, v in samples.items() if k.startswith("advrec_stage_events_total{") and v < valid]
            now, by_role = time.perf_counter(), cpu_by_role()
            if first is None and done > 0:
                first = (now, done, by_role)
            if done >= total and not behind:
                break
            # /metrics costs the worker CPU: poll rarely while far from the end, every 50 ms near it
            # and before the first event (the clock's two ends).
            rate = (done - first[1]) / max(now - first[0], 1e-3) if first else 0.0
            time.sleep(min(1.0, max(0.05, 0.3 * (total - done) / rate)) if rate > 0 else 0.05)
        n = done - first[1]
        split = {role: 1e6 * (by_role[role] - first[2][role]) / n for role in by_role}
        sampling.set()
        steps = tuple(
            (t - first[0], {role: (cpu[role] - before[role]) / (t - t_before) for role in cpu})
            for (t_before, before), (t, cpu) in zip(samples_cpu, samples_cpu[1:])
        )
        cpu = 1e6 * (ours(by_role) - ours(first[2])) / n
        return WorkerRun(n / (now - first[0]), cpu, samples, split, steps, now - first[0])
    finally:
        sampling.set()
        for process in processes:
            process.stop()


def envelope_records(events: list[dict], size: int, partitions: int, bad_every: int) -> list[tuple[bytes, bytes]]:
    """The events as envelopes of `size`, grouped per partition of their user's key (murmur2, as a client would)."""
    from kafka.partitioner.default import murmur2

    by_partition: dict[int, list[dict]] = {}
    for event in events:
        key = event["user_id"].encode()
        by_partition.setdefault((murmur2(key) & 0x7FFFFFFF) % partitions, []).append(event)
    records = []
    for group in by_partition.values():
        for start in range(0, len(group), size):
            chunk = group[start : start + size]
            records.append((chunk[0]["user_id"].encode(), json.dumps(chunk).encode()))
    if bad_every:  # the same share of malformed inputs as the single-event run
        records += [(None, b"{not json")] * (len(events) // bad_every)
    return records


class PeerRun(NamedTuple):
    """The peer's run: events/s, its own CPU µs/event (every thread of its process), and the
    broker's CPU µs/event over the same stretch (its first message to its last)."""

    rate: float
    cpu: float
    broker_cpu: float


def peer_run(python: str, bootstrap: str, topic: str, total: int, broker_pid: int) -> PeerRun:
    """A quix-streams app counting events per user in its state, same topic (a subprocess)."""
    import subprocess

    script = Path(__file__).with_name("peer_quix.py")
    with (
        tempfile.TemporaryFile("w+") as errors,
        subprocess.Popen(
            [python, str(script), bootstrap, topic, str(total)], stdout=subprocess.PIPE, stderr=errors, text=True
        ) as peer,
    ):
        watchdog = threading.Timer(900, peer.kill)
        watchdog.start()
        broker_from, result = None, None
        for line in peer.stdout:  # the peer says when its first message and its last are in
            if line.startswith("first"):
                broker_from = process_cpu_s(broker_pid)
            elif line.startswith("rate ") and broker_from is not None:
                fields = line.split()
                broker_cpu = 1e6 * (process_cpu_s(broker_pid) - broker_from) / total
                result = PeerRun(float(fields[1]), float(fields[3]), broker_cpu)
        peer.wait()
        watchdog.cancel()
        if result is None:
            errors.seek(0)
            raise RuntimeError(f"peer printed no rate:\n{errors.read()[-2000:]}")
    return result


def run_engine(broker: KafkaBroker | TansuBroker, workdir: Path, records: list, env: dict, repeat: int = 1) -> dict:
    """Every single-event rate of this benchmark on one broker.

    With `repeat` > 1 the bare Faust agent and the worker run in turn that many times, each worker
    with a fresh app (its own tables); the figures are the medians, and the ratio is the median of
    the ratios of each pair, which holds better on a noisy machine than one pair's.
    """
    topic = "bench-events"
    ensure_topics(broker.bootstrap, [topic, "events.deadletter"], 4)
    t0 = time.perf_counter()
    send_raw(broker.bootstrap, topic, records)
    produce_rate = len(records) / (time.perf_counter() - t0)
    bare = asyncio.run(bare_consumer_rate(broker.bootstrap, topic, len(records)))
    pairs, splits = [], []
    tansu = broker.engine == "tansu"
    for n in range(repeat):
        bare_faust = bare_faust_rate(broker.bootstrap, topic, len(records))
        bare_advrec = bare_faust_rate(broker.bootstrap, topic, len(records), as_advrec=True)
        run = worker_run(broker.bootstrap, topic, len(records), workdir / str(n), env, tansu, broker_pid=broker.pid)
        pairs.append((bare_faust, bare_advrec, run.rate, run.cpu))
        splits.append(run.cpu_by_role)
    bare_faust, bare_advrec, rate, cpu = (statistics.median(column) for column in zip(*pairs))
    return dict(
        engine=broker.engine,
        start_s=broker.started_in_s,
        produce=produce_rate,
        bare=bare,
        bare_faust=bare_faust,
        worker=rate,
        cpu=cpu,
        bare_faust_advrec=bare_advrec,
        ratios=[w / b for b, _, w, _ in pairs],
        ratios_advrec=[w / b for _, b, w, _ in pairs],
        samples=run.samples,
        cpu_by_role={role: statistics.median(split[role] for split in splits) for role in splits[0]},
    )


def print_ratio(label: str, ratios: list[float]) -> None:
    if len(ratios) == 1:
        print(f"{label} {ratios[0]:10.3f}")
    else:
        print(
            f"{label} {statistics.median(ratios):10.3f} "
            f"(median of {len(ratios)} pairs run in turn; {min(ratios):.3f}-{max(ratios):.3f})"
        )


def run_envelopes(
    broker: KafkaBroker | TansuBroker,
    workdir: Path,
    records: list,
    total: int,
    env: dict,
    repeat: int = 1,
    timeline: bool = False,
) -> dict:
    """The worker on envelopes: draining a preloaded topic (as every other figure here), `repeat`
    times (each a fresh app; the medians, and every run's rate), then live once (the worker started
    on an empty topic, the envelopes sent while it runs).

    Run on the broker of the single-event figures, after them: a broker fresh from its start is
    still compiling its hot paths (JIT), which cost the first envelope run about a fifth of its
    rate here, a cost of the broker's first minute, not of the worker. One run is not a figure:
    on one warm broker, runs of the same code ranged 36k-55k events/s here.
    """
    tansu = broker.engine == "tansu"
    ensure_topics(broker.bootstrap, ["bench-envelopes", "bench-live", "events.deadletter"], 4)
    send_raw(broker.bootstrap, "bench-envelopes", records)
    drained = [
        worker_run(
            broker.bootstrap,
            "bench-envelopes",
            total,
            workdir / f"a{n}",
            env,
            tansu,
            broker_pid=broker.pid,
            timeline=timeline,
        )
        for n in range(repeat)
    ]
    median_run = sorted(drained, key=lambda run: run.rate)[len(drained) // 2]
    live = worker_run(
        broker.bootstrap,
        "bench-live",
        total,
        workdir / "b",
        env,
        tansu,
        feed=lambda: send_raw(broker.bootstrap, "bench-live", records),
    )
    return dict(
        worker=statistics.median(run.rate for run in drained),
        rates=[run.rate for run in drained],
        cpu=statistics.median(run.cpu for run in drained),
        cpu_by_role={
            role: statistics.median(run.cpu_by_role[role] for run in drained) for role in drained[0].cpu_by_role
        },
        live=live.rate,
        live_cpu=live.cpu,
        timeline=median_run.timeline,
        timeline_seconds=median_run.clock_s,
    )


def run_scale_out(engine: str, records: list, total: int, env: dict, counts: list[int]) -> dict[int, tuple]:
    """Live runs with 1, 2, ... workers in one consumer group, one fresh broker: {workers: (events/s, CPU µs/event)}.

    Each count gets a fresh topic and app; the records are sent once every worker holds partitions.
    The workers, the broker and the producer share this machine's cores: the figures say how far
    scale-out goes here, not on a machine with a core per worker.
    """
    out = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "kafka", engine=engine) as broker:
        for n in counts:
            topic = f"bench-scale-{n}"
            ensure_topics(broker.bootstrap, [topic, "events.deadletter"], 4)
            run = worker_run(
                broker.bootstrap,
                topic,
                total,
                Path(tmp) / f"scale{n}",
                env,
                engine == "tansu",
                feed=lambda topic=topic: send_raw(broker.bootstrap, topic, records),
                workers=n,
            )
            out[n] = (run.rate, run.cpu)
    return out


def run_peer(engine: str, records: list, peer_python: str) -> PeerRun:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "kafka", engine=engine) as broker:
        topic = "bench-peer"
        ensure_topics(broker.bootstrap, [topic], 4)
        send_raw(broker.bootstrap, topic, records)
        return peer_run(peer_python, broker.bootstrap, topic, len(records), broker.pid)


def cores_busy(rate: float, cpu_by_role: dict[str, float]) -> float:
    """Cores the run kept busy on average: its rate times the CPU per event of every process
    timed (the broker's included). Against the machine's cores it tells how much of the gap to a
    higher rate is CPU per event and how much is time a process waited for another."""
    return rate * sum(cpu_by_role.values()) / 1e6


def print_timeline(steps: tuple, clock_s: float) -> None:
    """The cores each process used over each step, by the step's end (0 s: the clock's start)."""
    print(f"  cores used every {TIMELINE_STEP_S} s of the median drained run (the clock: 0 to {clock_s:.2f} s):")
    for t, cores in steps:
        print(f"    {t:6.2f} s  " + "  ".join(f"{role} {used:.2f}" for role, used in cores.items()))


def by_role(cpu: dict[str, float]) -> str:
    """CPU µs/event per process role; the broker's is not in the worker's figure (it shares the cores)."""
    roles = ("workers", *(command for _, command, _, _ in STAGES_APART), "broker")
    parts = [f"{role} {cpu[role]:.1f}" for role in roles if role in cpu]
    return ", ".join(parts) + (" (the broker's not counted above)" if "broker" in cpu else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--source", choices=["sim", "movielens", "taobao"], default="sim")
    parser.add_argument("--bad-every", type=int, default=100, help="one malformed input per this many events")
    parser.add_argument("--engines", default="kafka,tansu", help="broker engines to measure, in this order")
    parser.add_argument("--env", action="append", default=[], help="extra ADVREC_X=Y for the worker")
    parser.add_argument(
        "--detector-process",
        action="store_true",
        help="the fraud detector in its own process (`advrec detector`), its CPU counted with the worker's",
    )
    parser.add_argument(
        "--windows-process",
        action="store_true",
        help="the window sink in its own process (`advrec windows`), its CPU counted with the worker's",
    )
    parser.add_argument("--envelope", type=int, default=100, help="events per envelope for the envelope run (0: skip)")
    parser.add_argument("--peer-python", default=None, help="a Python with quixstreams installed, for the peer")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="bare Faust agent and worker run in turn this many times, and the envelopes drained (medians)",
    )
    parser.add_argument(
        "--workers", default="", help="scale-out: live runs on envelopes with these numbers of workers, e.g. 1,2,4"
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help=f"print the cores each process used every {TIMELINE_STEP_S} s of the median drained envelope run",
    )
    args = parser.parse_args()

    events = load_events(args.source, args.events)
    records = []
    for i, event in enumerate(events):
        records.append((event["user_id"].encode(), json.dumps(event).encode()))
        if args.bad_every and i % args.bad_every == 0:
            records.append((None, b"{not json"))
    env = dict(kv.split("=", 1) for kv in args.env)
    if args.detector_process:
        env["ADVREC_FRAUD_IN_WORKER"] = "false"
    if args.windows_process:
        env["ADVREC_WINDOWS_IN_WORKER"] = "false"
    users = len({e["user_id"] for e in events})
    print(f"source={args.source} inputs={len(records)} users={users} (1 malformed per {args.bad_every})")
    for stage, command, setting, _ in STAGES_APART:
        where = f"its own process (advrec {command})" if apart(env, setting) else "the worker"
        print(f"{stage} in {where}; every worker figure below counts it (CPU, and the clock waits for it)")
    results, enveloped_run = [], None
    enveloped = envelope_records(events, args.envelope, 4, args.bad_every) if args.envelope else []
    inputs = len(events) + len(events) // args.bad_every if args.bad_every else len(events)
    for engine in args.engines.split(","):
        with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "kafka", engine=engine) as broker:
            r = run_engine(broker, Path(tmp), records, env, args.repeat)
            if enveloped and not results:  # the envelope figures: first engine only, same broker
                enveloped_run = run_envelopes(
                    broker, Path(tmp) / "envelopes", enveloped, inputs, env, args.repeat, args.timeline
                )
        results.append(r)
        batch_n = metric_total(r["samples"], "advrec_ingest_batch_events_count")
        batch_s = metric_total(r["samples"], "advrec_ingest_batch_seconds_sum")
        print(f"\n[{engine}] broker ready in {r['start_s']:.1f} s")
        print(f"producer (kafka-python, preload):      {r['produce']:10.0f} records/s")
        print(f"bare aiokafka consumer (count only):   {r['bare']:10.0f} records/s")
        print(f"bare Faust agent (take_events, no work): {r['bare_faust']:8.0f} events/s")
        print(f"  the same agent run as advrec runs Faust: {r['bare_faust_advrec']:6.0f} events/s (run_worker)")
        print(f"advrec worker (validate+DLQ+profiles): {r['worker']:10.0f} events/s ({r['cpu']:.0f} us CPU/event)")
        print(f"  CPU us/event by process (medians):   {by_role(r['cpu_by_role'])}")
        print(f"ratio worker / bare consumer:          {r['worker'] / r['bare']:10.3f}")
        print_ratio("ratio worker / bare Faust agent:      ", r["ratios"])
        print_ratio("ratio worker / bare agent run as advrec:", r["ratios_advrec"])
        print(
            f"worker batches: {batch_n:.0f}, mean {len(records) / max(batch_n, 1):.0f} events/batch, "
            f"pure batch work {1e6 * batch_s / len(records):.1f} us/event"
        )
    base = results[0]
    if enveloped_run is not None:
        r = enveloped_run
        print(f"\n[{base['engine']}] envelopes of {args.envelope} events ({len(enveloped)} messages)")
        print(f"advrec worker on envelopes:            {r['worker']:10.0f} events/s ({r['cpu']:.1f} us CPU/event)")
        if len(r["rates"]) > 1:
            print(
                f"  median of {len(r['rates'])} runs: " + ", ".join(f"{rate:.0f}" for rate in r["rates"]) + " events/s"
            )
        print(f"  CPU us/event by process{' (medians)' if len(r['rates']) > 1 else ''}: {by_role(r['cpu_by_role'])}")
        print(
            f"  live (sent while the worker runs):   {r['live']:10.0f} events/s ({r['live_cpu']:.1f} us CPU/event; "
            "the producer's pace included)"
        )
        print(f"ratio envelopes / single-event worker: {r['worker'] / base['worker']:10.2f}")
        print(
            f"ratio envelopes worker / bare Faust agent (single-event messages): {r['worker'] / base['bare_faust']:.2f}"
        )
        busy = cores_busy(r["worker"], r["cpu_by_role"])
        print(f"  cores busy ({', '.join(r['cpu_by_role'])}): {busy:.2f} of {os.cpu_count()}")
        if args.timeline:
            print_timeline(r["timeline"], r["timeline_seconds"])
        if args.peer_python:
            peer = run_peer(base["engine"], [(k, v) for k, v in records if k is not None], args.peer_python)
            print(
                f"peer quix-streams 3.28, per-user stateful count, single events: {peer.rate:10.0f} events/s "
                f"({peer.cpu:.1f} us CPU/event; broker {peer.broker_cpu:.1f})"
            )
            print(f"ratio worker on envelopes / peer:      {r['worker'] / peer.rate:10.2f}")
            stages = "+".join(role for role in r["cpu_by_role"] if role != "broker")
            print(f"ratio CPU/event, envelopes ({stages}) / peer: {r['cpu'] / peer.cpu:.2f}")
    if args.workers and args.envelope:
        counts = [int(n) for n in args.workers.split(",")]
        runs = run_scale_out(base["engine"], enveloped, inputs, env, counts)
        cores = os.cpu_count()
        print(
            f"\n[{base['engine']}] scale-out on envelopes of {args.envelope}, live, "
            f"{cores} cores shared with the broker and the producer"
        )
        for n, (rate, cpu) in runs.items():
            print(
                f"{n} worker{'s' if n > 1 else ' '}:                             {rate:10.0f} events/s "
                f"({cpu:.1f} us CPU/event, all workers; {rate / runs[counts[0]][0]:.2f}x {counts[0]})"
            )
    if len(results) > 1:
        print(
            f"\nworker events/s by engine (ratio to {base['engine']}): "
            + ", ".join(f"{r['engine']} {r['worker']:.0f} ({r['worker'] / base['worker']:.2f}x)" for r in results)
        )


if __name__ == "__main__":
    main()
