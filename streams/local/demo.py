"""`advrec demo`: the whole loop on embedded defaults, in phases that show they are alive, ending with a report.

Started by the `demo` command (streams/local/main.py). Phases, each timed and reported as plain
log lines (on stdout and in `OUT/demo.log`, so a log shows progress as a terminal does):

1. prepare: the stream (a dataset or the simulator) with an attack woven in from its middle, plus
   a sprinkle of malformed inputs;
2. start: the broker, then a worker, the defended trainer and scorer, and an undefended shadow
   trainer and scorer (same stream and requests, no quarantine, plain BPR, own model name, never
   promoted), as real processes;
3. replay: the stream at a set rate, with recommendation requests to genuine users all along;
4. drain: until every window is written, trained by both trainers and served (or `--duration`);
   then serve: the final versions answer requests a few seconds more (they are measured too);
5. stop, and report: facts from the topics, MLflow's version tags and the window files, turned into
   `report.json`, `report.md`, `report.html` and PNGs by the pure `report*` modules.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shlex
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from streams.contract.settings import Settings

__all__ = ["run_demo", "build_stream", "default_attack", "DEMO_LOG"]

log = logging.getLogger("advrec.demo")

DEMO_LOG = "demo.log"
MALFORMED = [
    b"{broken json",
    b"[]",
    b'{"event_id": "x", "type": "click"}',
    b'{"event_id": "x", "user_id": "u", "item_id": "i", "type": "like", "ts": 1.7e9}',
]
PROGRESS_EVERY_S = 5.0
REQUESTS_PER_S = 20.0
# Once settled, the final versions keep answering this long, so that the models every window
# trained are measured on a few hundred served lists each, not only on the last seconds' answers.
SERVE_FINAL_S = 12.0


def default_attack(dataset: Path | None) -> str:
    """The attack injected when `--attack` is not given: a click farm, or a bandwagon on a ratings file.

    The click farm (8% of users, filler 2% of the catalogue drawn by popularity, one target) is sized
    so that it clearly lifts its target in an undefended BPR model's lists: trained once on the
    simulator's 30,000 events, the target is in 23% of genuine users' top-10 lists (0.4% without the
    farm), against 6% with 5% of users and 0.4% with uniform filler (chosen on the simulator, seed 0;
    the detector was not looked at or changed). On a MovieLens slice neither lifts its target.
    """
    is_ratings = dataset is not None and dataset.name.lower().startswith(("u.data", "ratings"))
    return "bandwagon:0.05:0.03" if is_ratings else "click_farm:0.08:0.02"


def build_stream(
    dataset: Path | None,
    n_events: int,
    attack: str,
    seed: int,
    filler: str = "uniform",
    mapping: dict[str, str] | None = None,
):
    """Genuine events (dataset or simulator) with an attack woven in from the middle; plus labels and targets.

    filler: how click-farm accounts pick their filler items, "uniform" or "popular" (popular filler
    makes attackers look like genuine users to a collaborative filter, so their target rides along).
    """
    from streams.sources.attacks import IMPLICIT_ATTACKS, parse_inject, plan_attack, summarize
    from streams.sources.datasets import open_events
    from streams.sources.simulator import simulated_events

    source = (
        simulated_events(n_events=n_events, seed=seed) if dataset is None else open_events(dataset, mapping=mapping)
    )
    genuine = [e for _, e in zip(range(n_events), source)]
    frame = pd.DataFrame(
        {
            "user": [e["user_id"] for e in genuine],
            "item": [e["item_id"] for e in genuine],
            "rating": [e["value"] if e["type"] == "rating" else np.nan for e in genuine],
            "timestamp": [e["ts"] for e in genuine],
        }
    )
    if attack == "none":
        return genuine, {}, []
    middle, last = genuine[len(genuine) // 2]["ts"], genuine[-1]["ts"]
    spec = parse_inject(attack, start_ts=middle, span_s=max(60.0, (last - middle) * 0.6))
    if spec.kind in IMPLICIT_ATTACKS:
        spec = parse_inject(attack, start_ts=middle, span_s=max(60.0, (last - middle) * 0.6), filler_choice=filler)
    plan = plan_attack(spec, summarize(frame), seed=seed)
    events = sorted(genuine + list(plan.events()), key=lambda e: e["ts"])
    return events, {user: kind for user, _, kind in plan.labels()}, list(plan.targets)


def _records(events, bad_fraction: float, seed: int) -> list[tuple[bytes | None, bytes, str | None]]:
    """(key, value, user) per input, malformed ones (user None) sprinkled in."""
    rng = random.Random(seed)
    out = []
    for event in events:
        out.append((event["user_id"].encode(), json.dumps(event).encode(), event["user_id"]))
        if rng.random() < bad_fraction:
            out.append((None, rng.choice(MALFORMED), None))
    return out


class Traffic:
    """Background threads: the replay at a set rate, recommendation requests, both pipelines' answers."""

    def __init__(
        self,
        bootstrap: str,
        settings: Settings,
        answer_topics: dict[str, str],
        records: list,
        attackers: set[str],
        rate: float,
        users: list[str],
        seed: int,
    ) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        self.settings, self.records, self.rate, self.attackers = settings, records, rate, attackers
        self.users, self.rng = users, random.Random(seed)
        self.pipeline_of_topic = {topic: pipeline for pipeline, topic in answer_topics.items()}
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        self.consumer = KafkaConsumer(
            *answer_topics.values(),
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=500,
        )
        self.sent = 0
        self.started_at: float | None = None
        self.attack_sent_at: float | None = None  # wall time of the first attacker's event
        self.replay_done = threading.Event()
        self.stop = threading.Event()
        self.requested: dict[str, float] = {}
        self.answers: list[dict] = []
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._replay, self._ask, self._listen)]

    def start(self) -> Traffic:
        self.started_at = time.time()
        for thread in self.threads:
            thread.start()
        return self

    def _replay(self) -> None:
        started = time.monotonic()
        for key, value, user in self.records:
            if self.stop.is_set():
                break
            if self.attack_sent_at is None and user in self.attackers:
                self.attack_sent_at = time.time()
            self.producer.send(self.settings.events_topic, key=key, value=value)
            self.sent += 1
            ahead = self.sent / self.rate - (time.monotonic() - started)
            if ahead > 0.002:
                time.sleep(ahead)
        self.producer.flush()
        self.replay_done.set()

    def _ask(self) -> None:
        while not self.stop.is_set():
            seen = self.users[: max(1, int(len(self.users) * min(1.0, self.sent / max(1, len(self.records)))))]
            user = self.rng.choice(seen)
            request_id = uuid.uuid4().hex
            self.requested[request_id] = time.time()
            self.producer.send(
                self.settings.rec_requests_topic,
                key=user.encode(),
                value=json.dumps({"request_id": request_id, "user_id": user, "k": 10, "exclude_seen": True}).encode(),
            )
            time.sleep(1.0 / REQUESTS_PER_S)

    def _listen(self) -> None:
        while not self.stop.is_set():
            for message in self.consumer:
                answer = json.loads(message.value)
                answer["received_at"] = time.time()
                answer["pipeline"] = self.pipeline_of_topic[message.topic]
                self.answers.append(answer)
                if self.stop.is_set():
                    break

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        self.producer.close()
        self.consumer.close()


class Phases:
    """Times each phase of the run and prefixes progress lines with the time since the start."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.seconds: dict[str, float] = {}
        self.current_began = self.started

    def so_far(self) -> dict[str, float]:
        """Seconds of the finished phases and of the one running now (`now`)."""
        return {**self.seconds, "now": round(time.monotonic() - self.current_began, 1)}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = self.current_began = time.monotonic()
        log.info("[%4.0f s] %s …", self.elapsed(), name)
        try:
            yield
        finally:
            self.seconds[name] = round(time.monotonic() - began, 1)
            log.info("[%4.0f s] %s done in %.1f s", self.elapsed(), name, self.seconds[name])

    def say(self, text: str, *args) -> None:
        log.info("[%4.0f s] " + text, self.elapsed(), *args)


def _total(samples: dict, name: str) -> float:
    from streams.local.processes import metric_total

    return metric_total(samples, name)


def _setup_logging(out: Path) -> logging.Handler:
    """Progress lines on stdout and, with timestamps, in OUT/demo.log (both flushed line by line)."""
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("%(message)s"))
    file = logging.FileHandler(out / DEMO_LOG, mode="w")
    file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(console)
    log.addHandler(file)
    return file


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Observed:
    """What the demo samples from the processes while the loop runs (the report's time series)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float]] = []
        self.replayed: list[tuple[float, float]] = []
        self.last: dict[str, dict[str, float]] = {}

    def sample(self, cluster, traffic: Traffic) -> dict[str, dict[str, float]]:
        now = {role: cluster.metrics(role) for role in cluster.processes}
        self.last = {role: samples or self.last.get(role, {}) for role, samples in now.items()}
        t = time.time() - (traffic.started_at or time.time())
        self.events.append((t, _total(self.last.get("worker", {}), "advrec_events_processed_total")))
        self.replayed.append((t, float(traffic.sent)))
        return self.last


def _progress(phases: Phases, phase: str, m: dict[str, dict[str, float]], traffic: Traffic) -> None:
    worker = m.get("worker", {})
    rounds = {
        role: m.get(role, {}).get('advrec_training_rounds_total{outcome="success"}', 0)
        for role in ("trainer", "shadow-trainer")
    }
    phases.say(
        "%s: %d/%d inputs sent, %d events processed, %d windows, %d users flagged, rounds %d defended / %d shadow, "
        "serving v%d defended / v%d shadow, %d answers",
        phase,
        traffic.sent,
        len(traffic.records),
        _total(worker, "advrec_events_processed_total"),
        _total(worker, "advrec_windows_written_total"),
        _total(worker, "advrec_fraud_flagged_users"),
        rounds["trainer"],
        rounds["shadow-trainer"],
        m.get("scorer", {}).get("advrec_serving_model_version", 0),
        m.get("shadow-scorer", {}).get("advrec_serving_model_version", 0),
        len(traffic.answers),
    )


def _settled(m: dict[str, dict[str, float]], traffic: Traffic, latest: dict[str, int | None]) -> bool:
    """Every input handled, every event windowed, every window trained by both trainers, the newest versions served."""
    worker = m.get("worker", {})
    handled = sum(
        _total(worker, n)
        for n in ("advrec_events_processed_total", "advrec_dead_letters_total", "advrec_events_duplicate_total")
    )
    windowed = worker.get("advrec_window_rows_sum", 0)
    windows = _total(worker, "advrec_windows_written_total")
    trained = all(
        m.get(role, {}).get("advrec_batches_consumed_total", -1) >= windows
        and m.get(role, {}).get("advrec_batches_pending", 1) == 0
        for role in ("trainer", "shadow-trainer")
    )
    # No version yet (the gate rejected every one) is settled too: the scorer serves popularity (0).
    served = all(
        m.get(role, {}).get("advrec_serving_model_version", -1) == (latest[pipeline] or 0)
        for pipeline, role in (("defended", "scorer"), ("undefended", "shadow-scorer"))
    )
    return (
        traffic.replay_done.is_set()
        and handled >= len(traffic.records)
        and windowed >= _total(worker, "advrec_events_processed_total")
        and trained
        and served
    )


def _flag_records(bootstrap: str, topic: str) -> list[tuple[float, str, bool]]:
    """Every record of `fraud.flags` up to its end offsets now, as (Kafka time in s, user, flagged)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    end = consumer.end_offsets(partitions)
    out, deadline = [], time.monotonic() + 30
    while any(consumer.position(tp) < end[tp] for tp in partitions) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for message in records:
                flag = json.loads(message.value) if message.value else {}
                user = flag.get("user_id") or (message.key or b"").decode()
                out.append((message.timestamp / 1000.0, user, bool(flag.get("flagged"))))
    consumer.close()
    return out


def _round_batches(models_dir: Path) -> dict[int, list[float]]:
    """Per round of a trainer: the newest Kafka arrival time of each batch it took (from its round files)."""
    out = {}
    for path in models_dir.glob("round-*.json"):
        lineage = json.loads(path.read_text())["lineage"]
        out[int(lineage["round"])] = [float(b.get("max_kafka_ts") or 0) for b in lineage.get("batches", [])]
    return out


def _versions(uri: str, model_name: str, pipeline: str, t0: float) -> tuple[list[dict], dict[int, int]]:
    """The registered versions of one pipeline with the gate's decision and reasons from their MLflow tags."""
    from registry.model_registry import ModelRegistry
    from registry.versions import tag_float

    registry = ModelRegistry(uri, model_name)
    rows, round_of_version = [], {}
    for row in sorted(registry.list_versions(), key=lambda r: r["version"]):
        tags = registry.version_tags(row["version"])
        round_tag = tags.get("lineage.round")
        round_no = int(float(round_tag)) if round_tag not in (None, "", "null") else None
        if round_no is not None:
            round_of_version[row["version"]] = round_no
        decided = tag_float(tags, "decided_at")
        rows.append(
            {
                "pipeline": pipeline,
                "model": model_name,
                "version": row["version"],
                "round": round_no,
                "aliases": row["aliases"],
                "decision": row["decision"],
                "reasons": row["reasons"],
                "hr@10": row["hr@10"],
                "ndcg@10": row["ndcg@10"],
                "fgsm_drop": row["fgsm_drop"],
                "at_s": round(decided - t0, 1) if decided is not None else None,
            }
        )
    return rows, round_of_version


def _latest_versions(uri: str, model_names: dict[str, str]) -> dict[str, int | None]:
    """What each pipeline should serve now: the defended champion and the shadow's `shadow` alias."""
    from registry.model_registry import ModelRegistry

    return {
        "defended": ModelRegistry(uri, model_names["defended"]).alias_version("champion"),
        "undefended": ModelRegistry(uri, model_names["undefended"]).alias_version("shadow"),
    }


def _windows(state: Path) -> pd.DataFrame:
    from streams.contract.windows import read_window

    files = sorted((state / "windows").rglob("*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat(
        [read_window(f.as_uri()).to_pandas().assign(path=f.relative_to(state / "windows").as_posix()) for f in files]
    )


def registry_commands(uri: str, model_names: dict[str, str]) -> list[str]:
    """The exact commands that inspect (and steer) the demo's registry after the run."""
    env = f"ADVREC_MLFLOW_TRACKING_URI={shlex.quote(uri)}"
    return [
        f"{env} advrec models",
        f"{env} ADVREC_MODEL_NAME={model_names['undefended']} advrec models",
        f"{env} advrec promote VERSION   # or: advrec rollback",
    ]


def run_demo(
    settings: Settings,
    dataset: Path | None,
    n_events: int,
    attack: str | None,
    rate: float,
    duration: float,
    bad_fraction: float,
    out: Path | None,
    seed: int,
    filler: str = "popular",
    mapping: str | None = None,
) -> dict:
    """Run the whole loop on embedded defaults, show each phase's progress, write the report; return it."""
    from streams.kafka.topics import ensure_topics
    from streams.local.cluster import ClusterConfig, LocalCluster

    out = (out or settings.data_dir / "demo").resolve()
    state = out / "state"
    shutil.rmtree(state, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    file_handler = _setup_logging(out)
    load_before = _load()
    phases = Phases()
    phases.say(
        "advrec demo: load average %s on %d CPUs; progress also in %s", load_before, os.cpu_count(), out / DEMO_LOG
    )

    with phases("prepare"):
        attack = attack or default_attack(dataset)
        from streams.sources.datasets import parse_mapping

        events, labels, targets = build_stream(
            dataset, n_events, attack, seed, filler, parse_mapping(mapping) if mapping else None
        )
        attackers = set(labels)
        records = _records(events, bad_fraction, seed)
        users = sorted({e["user_id"] for e in events} - attackers)
        phases.say(
            "stream: %d events (%d attackers, %s, filler %s, targets %s), %d malformed, replayed at %.0f/s",
            len(events),
            len(attackers),
            attack,
            filler,
            ", ".join(targets) or "none",
            len(records) - len(events),
            rate,
        )

    cluster = LocalCluster(ClusterConfig(state_dir=state, bootstrap=settings.kafka_bootstrap))
    model_names = {"defended": settings.model_name, "undefended": cluster.config.shadow_model_name}
    answer_topics = {"defended": settings.recommendations_topic, "undefended": cluster.shadow_recommendations_topic}
    traffic: Traffic | None = None
    observed = Observed()
    deadline = time.monotonic() + duration
    try:
        with phases("start"):
            bootstrap = cluster.start_broker()
            phases.say("broker ready on %s; MLflow store %s", bootstrap, cluster.mlflow_uri)
            ensure_topics(
                bootstrap,
                [
                    settings.events_topic,
                    settings.deadletter_topic,
                    settings.batches_topic,
                    settings.fraud_flags_topic,
                    settings.rec_requests_topic,
                    *answer_topics.values(),
                    settings.model_updates_topic,
                ],
                settings.topic_partitions,
                compacted=settings.compacted_topics,
            )
            roles = ("worker", "trainer", "scorer", "shadow-trainer", "shadow-scorer")
            for role in roles:
                cluster.start(role, wait=False)
            for role in roles:
                cluster.processes[role].wait_http(cluster.metrics_url(role), timeout_s=120)
                phases.say("%s up (log %s, metrics %s)", role, state / f"{role}.log", cluster.metrics_url(role))
        traffic = Traffic(bootstrap, settings, answer_topics, records, attackers, rate, users, seed).start()
        with phases("replay"):
            last_progress = 0.0
            while not traffic.replay_done.is_set() and time.monotonic() < deadline:
                m = observed.sample(cluster, traffic)
                if time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                    _progress(phases, "replay", m, traffic)
                    last_progress = time.monotonic()
                time.sleep(1.0)
        with phases("drain"):
            while time.monotonic() < deadline:
                m = observed.sample(cluster, traffic)
                if _settled(m, traffic, _latest_versions(cluster.mlflow_uri, model_names)):
                    _progress(phases, "drain: every window trained and served", m, traffic)
                    break
                if time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                    _progress(phases, "drain", m, traffic)
                    last_progress = time.monotonic()
                time.sleep(1.0)
            else:
                phases.say("drain: --duration %.0f s reached; reporting what happened", duration)
        if time.monotonic() < deadline:
            with phases("serve"):
                phases.say("serve: the final versions answer requests for %.0f s", SERVE_FINAL_S)
                until = min(deadline, time.monotonic() + SERVE_FINAL_S)
                while time.monotonic() < until:
                    observed.sample(cluster, traffic)
                    time.sleep(1.0)
                _progress(phases, "serve", observed.last, traffic)
        with phases("stop"):
            flags = _flag_records(bootstrap, settings.fraud_flags_topic)
            traffic.close()
            cluster.stop()
    finally:
        if traffic is not None:
            traffic.close()
        cluster.stop()
    loop_s = phases.elapsed()

    with phases("report"):
        report = _write_report(
            settings, out, state, cluster.mlflow_uri, model_names, traffic, observed, flags, events, attackers,
            targets, attack, filler, dataset, records, phases, load_before,
        )  # fmt: skip
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float))
    e, v = report["target_exposure"], report["verdict"]
    phases.say(
        "done in %.0f s (loop %.0f s; phases %s)",
        report["times"]["total_s"],
        loop_s,
        ", ".join(f"{k} {s:.0f} s" for k, s in report["times"]["phases"].items()),
    )
    phases.say(
        "target exposure: before the attack %s, undefended %s, defended %s (attack bites: %s, defence holds: %s)",
        *(f"{x:.3f}" if x is not None else "–" for x in (e["before_attack"], e["undefended"], e["defended"])),
        v["attack_bites"],
        v["defence_holds"],
    )
    phases.say("report: %s (and report.html, report.json; pictures %s)", out / "report.md", ", ".join(report["plots"]))
    phases.say("inspect the demo's registry:\n  %s", "\n  ".join(report["registry"]["commands"]))
    log.removeHandler(file_handler)
    file_handler.close()
    return report


def _source_share(answers: list[dict], pipeline: str, source: str) -> float | None:
    """The share of a pipeline's answers of one `source` ("profile", "model", "popularity"; None:
    it answered nothing)."""
    mine = [a.get("source") == source for a in answers if a["pipeline"] == pipeline]
    return sum(mine) / len(mine) if mine else None


def _write_report(
    settings, out, state, uri, model_names, traffic, observed, flags, events, attackers, targets, attack, filler,
    dataset, records, phases, load_before,
) -> dict:  # fmt: skip
    """Gather the run's facts and write report.md, report.html and the PNGs; return the report dict."""
    from streams.fraud.evaluation import detection_scores
    from streams.local.report import (
        attack_round,
        attack_rows_trained,
        exposure_over_time,
        exposure_verdict,
        flags_over_time,
        freshness_seconds,
        percentiles,
        target_exposure,
    )
    from streams.local.report_pages import html_page, markdown_report
    from streams.local.report_plots import write_plots

    t0 = traffic.started_at if traffic and traffic.started_at else time.time()
    answers = traffic.answers if traffic else []
    genuine = {e["user_id"] for e in events} - attackers
    attack_start = traffic.attack_sent_at if traffic else None
    defended_rows, defended_rounds = _versions(uri, model_names["defended"], "defended", t0)
    shadow_rows, shadow_rounds = _versions(uri, model_names["undefended"], "undefended", t0)
    round_of_version = {"defended": defended_rounds, "undefended": shadow_rounds}
    first_attack_round = {
        "defended": attack_round(_round_batches(state / "models"), attack_start),
        "undefended": attack_round(_round_batches(state / "shadow" / "models"), attack_start),
    }
    exposure = target_exposure(answers, targets, genuine, round_of_version, first_attack_round, attack_start)

    # freshness of the defended pipeline: event arrival → first answer of a version trained on it
    windows = _windows(state)
    arrivals_by_round = {}
    for path in (state / "models").glob("round-*.json"):
        lineage = json.loads(path.read_text())["lineage"]
        files = {b["path"] for b in lineage.get("batches", [])}
        rows = windows[windows["path"].isin(files)] if len(windows) else windows
        arrivals_by_round[int(lineage["round"])] = list(rows["kafka_ts"]) if len(rows) else []
    first_served: dict[int, float] = {}
    for answer in answers:
        version = int(answer.get("model_version") or 0)
        if version and answer["pipeline"] == "defended":
            first_served[version] = min(first_served.get(version, answer["served_at"]), answer["served_at"])
    fresh = freshness_seconds(arrivals_by_round, defended_rounds, first_served)

    attacker_events = sum(e["user_id"] in attackers for e in events)
    rows_trained = {
        pipeline: attack_rows_trained(
            (json.loads(p.read_text())["lineage"].get("trained_by_user", {}) for p in models.glob("round-*.json")),
            attackers,
            attacker_events,
        )
        for pipeline, models in (("defended", state / "models"), ("undefended", state / "shadow" / "models"))
    }

    users = {e["user_id"] for e in events}
    final_state: dict[str, bool] = {}
    for _, user, flagged in sorted(flags):
        final_state[user] = flagged
    flagged_now = {u for u, f in final_state.items() if f}
    detection = detection_scores(flagged_now & users, users, {a: "attack" for a in attackers})
    defended_answers = [a for a in answers if a["pipeline"] == "defended"]
    latencies = [
        1e3 * (a["received_at"] - traffic.requested[a["request_id"]])
        for a in defended_answers
        if a["request_id"] in traffic.requested
    ]
    worker = observed.last.get("worker", {})
    trainer = observed.last.get("trainer", {})
    champion = next((v for v in defended_rows if "champion" in v["aliases"]), None)
    t_end = max([t for t, _ in observed.events] + [0.0])
    report = {
        "dataset": str(dataset) if dataset else "simulator",
        "attack": {
            "spec": attack,
            "filler": filler,
            "targets": list(targets),
            "attackers": len(attackers),
            "start_s": round(attack_start - t0, 1) if attack_start else None,
            "first_attack_round": first_attack_round,
        },
        "times": {"phases": dict(phases.seconds), "total_s": None},
        "load": {"before": load_before, "after": _load(), "cpus": os.cpu_count()},
        "inputs": len(records),
        "events": int(_total(worker, "advrec_events_processed_total")),
        "dead_letters": int(_total(worker, "advrec_dead_letters_total")),
        "detection": detection,
        "attack_rows_trained": rows_trained,
        "models": {
            "rounds": int(trainer.get('advrec_training_rounds_total{outcome="success"}', 0)),
            "registered": len(defended_rows),
            "promoted": sum(1 for v in defended_rows if v["decision"] == "promote"),
            "held": sum(1 for v in defended_rows if v["decision"] == "hold"),
            "rejected": sum(1 for v in defended_rows if v["decision"] == "reject"),
            "shadow_rounds": int(
                observed.last.get("shadow-trainer", {}).get('advrec_training_rounds_total{outcome="success"}', 0)
            ),
        },
        "champion": (
            {
                "version": champion["version"],
                "hr@10": champion["hr@10"],
                "ndcg@10": champion["ndcg@10"],
                "fgsm_eps": settings.gate_fgsm_eps,
                "fgsm_ndcg_drop": champion["fgsm_drop"],
            }
            if champion
            else None
        ),
        "versions": defended_rows + shadow_rows,
        "target_exposure": exposure,
        "verdict": exposure_verdict(exposure),
        "freshness_seconds": {**percentiles(fresh), "events_measured": int(len(fresh))},
        "serving": {
            "requests": len(traffic.requested) if traffic else 0,
            "answered": len(latencies),
            "end_to_end_ms": percentiles(np.asarray(latencies), (50, 95, 99)),
            # the champion over the user's profile; or no champion yet, or a user it can rank
            # neither by profile nor by a trained row: the popularity list
            "from_profile": {
                pipeline: _source_share(answers, pipeline, "profile") for pipeline in ("defended", "undefended")
            },
            "from_popularity": {
                pipeline: _source_share(answers, pipeline, "popularity") for pipeline in ("defended", "undefended")
            },
        },
        "sample_recommendations": [
            {k: a[k] for k in ("user_id", "items", "model_version")}
            for a in [a for a in defended_answers if a.get("model_version")][-3:]
        ],
        "registry": {
            "uri": uri,
            "model": model_names["defended"],
            "shadow_model": model_names["undefended"],
            "commands": registry_commands(uri, model_names),
        },
        "plots": [],
    }
    series = {
        "events": observed.events,
        "replayed": observed.replayed,
        "flags": flags_over_time(flags, attackers, t0, t0 + t_end, 1.0),
        "exposure": exposure_over_time(answers, targets, genuine, t0, 5.0),
    }
    report["plots"] = write_plots(out, report, series, fresh)
    # the report phase is nearly over: its time so far (pages take milliseconds) and the total
    report["times"]["phases"]["report"] = phases.so_far()["now"]
    report["times"]["total_s"] = round(phases.elapsed(), 1)
    markdown = markdown_report(report)
    (out / "report.md").write_text(markdown)
    images = {name: (out / name).read_bytes() for name in report["plots"]}
    (out / "report.html").write_text(html_page(markdown, images))
    return report
