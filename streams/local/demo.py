"""`advrec demo`: the whole loop on embedded defaults, watched live, ending with a report.

Started by the `demo` command (streams/local/main.py). Starts a broker, a worker (ingest, fraud
detection, windows), the trainer
(registering every round in a local MLflow store behind the promotion gate) and the scorer as
real processes; replays a dataset or the simulator with an attack injected midway and a sprinkle
of malformed inputs; sends recommendation requests all along; shows a live view; and writes
`report.md`, `report.json` and PNG plots whose numbers all come from this run.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from streams.contract.settings import Settings

__all__ = ["run_demo", "build_stream"]

MALFORMED = [
    b"{broken json",
    b"[]",
    b'{"event_id": "x", "type": "click"}',
    b'{"event_id": "x", "user_id": "u", "item_id": "i", "type": "like", "ts": 1.7e9}',
]


def build_stream(dataset: Path | None, n_events: int, attack: str, seed: int):
    """Genuine events (dataset or simulator) with an attack woven in from the middle; plus labels."""
    from streams.sources.attacks import parse_inject, plan_attack, summarize
    from streams.sources.datasets import open_events
    from streams.sources.simulator import simulated_events

    source = simulated_events(n_events=n_events, seed=seed) if dataset is None else open_events(dataset)
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
    plan = plan_attack(spec, summarize(frame), seed=seed)
    events = sorted(genuine + list(plan.events()), key=lambda e: e["ts"])
    return events, {user: kind for user, _, kind in plan.labels()}, list(plan.targets)


def _records(events, bad_fraction: float, seed: int):
    rng = random.Random(seed)
    for event in events:
        yield event["user_id"].encode(), json.dumps(event).encode()
        if rng.random() < bad_fraction:
            yield None, rng.choice(MALFORMED)


class Traffic:
    """Background threads: the replay at a set rate, recommendation requests, their answers."""

    def __init__(
        self,
        bootstrap: str,
        settings: Settings,
        records: list,
        rate: float,
        request_rate: float,
        users: list[str],
        seed: int,
    ) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        self.settings, self.records, self.rate, self.request_rate = settings, records, rate, request_rate
        self.users, self.rng = users, random.Random(seed)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        self.consumer = KafkaConsumer(
            settings.recommendations_topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=500,
        )
        self.sent = 0
        self.replay_done = threading.Event()
        self.stop = threading.Event()
        self.requested: dict[str, float] = {}
        self.answers: list[dict] = []
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._replay, self._ask, self._listen)]

    def start(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def _replay(self) -> None:
        started = time.monotonic()
        for key, value in self.records:
            if self.stop.is_set():
                break
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
            time.sleep(1.0 / self.request_rate)

    def _listen(self) -> None:
        while not self.stop.is_set():
            for message in self.consumer:
                answer = json.loads(message.value)
                answer["received_at"] = time.time()
                self.answers.append(answer)
                if self.stop.is_set():
                    break

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        self.producer.close()
        self.consumer.close()


def _total(samples: dict, name: str) -> float:
    from streams.local.processes import metric_total

    return metric_total(samples, name)


def _live_table(cluster, traffic: Traffic, elapsed: float):
    from rich.table import Table

    from streams.local.report import histogram_quantile

    worker, trainer, scorer = (cluster.metrics(n) for n in ("worker", "trainer", "scorer"))
    table = Table(title=f"advrec demo — {elapsed:5.0f} s", show_header=True)
    table.add_column("stage")
    table.add_column("now", justify="right")
    processed = _total(worker, "advrec_events_processed_total")
    table.add_row("events replayed / processed", f"{traffic.sent} / {processed:.0f}")
    table.add_row("events/s (mean)", f"{processed / max(elapsed, 1e-9):.0f}")
    table.add_row("dead letters", f"{_total(worker, 'advrec_dead_letters_total'):.0f}")
    table.add_row("users flagged (now)", f"{_total(worker, 'advrec_fraud_flagged_users'):.0f}")
    table.add_row("windows written", f"{_total(worker, 'advrec_windows_written_total'):.0f}")
    rounds = trainer.get('advrec_training_rounds_total{outcome="success"}', 0)
    failed = trainer.get('advrec_training_rounds_total{outcome="failure"}', 0)
    table.add_row("training rounds", f"{rounds:.0f} (failed {failed:.0f})")
    decisions = {d: trainer.get(f'advrec_promotions_total{{decision="{d}"}}', 0) for d in ("promote", "hold", "reject")}
    table.add_row("promotions", " ".join(f"{d}={n:.0f}" for d, n in decisions.items()))
    table.add_row("serving model version", f"{scorer.get('advrec_serving_model_version', 0):.0f}")
    p50 = histogram_quantile(0.5, scorer, "advrec_scoring_latency_seconds")
    p99 = histogram_quantile(0.99, scorer, "advrec_scoring_latency_seconds")
    table.add_row("scoring latency p50 / p99", f"{(p50 or 0) * 1e3:.2f} / {(p99 or 0) * 1e3:.2f} ms")
    table.add_row("recommendations answered", f"{len(traffic.answers)}")
    return table


def _final_flags(bootstrap: str, topic: str) -> set[str]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    state: dict[str, bool] = {}
    for message in consumer:
        flag = json.loads(message.value)
        state[flag["user_id"]] = bool(flag["flagged"])
    consumer.close()
    return {user for user, flagged in state.items() if flagged}


def _target_lift(windows: pd.DataFrame, attackers: set[str], flagged: set[str], targets: list[str], seed: int):
    """Target items' HR@50 among genuine users: clean data, undefended (all), defended (flagged dropped)."""
    from training.evaluation import target_hit_rate
    from training.models import BPRRecommender
    from training.stream.cleaning import events_to_interactions

    interactions = events_to_interactions(windows)
    genuine_users = sorted(set(interactions["user"]) - attackers)

    def hit_rate(frame: pd.DataFrame) -> float:
        model = BPRRecommender(seed=seed).fit(frame, epochs=15)
        return target_hit_rate(model, genuine_users, targets, k=50)

    clean = hit_rate(interactions[~interactions["user"].isin(attackers)])
    undefended = hit_rate(interactions)
    defended = hit_rate(interactions[~interactions["user"].isin(flagged)])
    return {
        "clean_hr@50": clean,
        "undefended_hr@50": undefended,
        "defended_hr@50": defended,
        "undefended": undefended - clean,
        "defended": defended - clean,
    }


def _plots(out: Path, timeline: list[tuple[float, float]], versions: list[dict], fresh: np.ndarray) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, ax = plt.subplots(figsize=(6, 3))
    if timeline:
        t, n = zip(*timeline)
        ax.plot(t, n)
    ax.set(xlabel="seconds", ylabel="events processed", title="Ingest")
    fig.tight_layout(), fig.savefig(out / "events.png"), plt.close(fig)
    names.append("events.png")
    fig, ax = plt.subplots(figsize=(6, 3))
    colors = {"promote": "tab:green", "hold": "tab:orange", "reject": "tab:red"}
    for row in sorted(versions, key=lambda r: r["version"]):
        ax.bar(row["version"], row["hr@10"] or 0, color=colors.get(row["decision"], "grey"))
    ax.set(xlabel="model version", ylabel="HR@10", title="Versions (green promoted, red rejected)")
    fig.tight_layout(), fig.savefig(out / "versions.png"), plt.close(fig)
    names.append("versions.png")
    fig, ax = plt.subplots(figsize=(6, 3))
    if len(fresh):
        ax.hist(fresh, bins=30)
    ax.set(
        xlabel="seconds from event arrival to first recommendation by a model trained on it",
        ylabel="events",
        title="Freshness",
    )
    fig.tight_layout(), fig.savefig(out / "freshness.png"), plt.close(fig)
    names.append("freshness.png")
    return names


def run_demo(settings: Settings, dataset, n_events, attack, rate, duration, bad_fraction, out, seed) -> None:
    """Run the whole loop on embedded defaults, watch it live, and write a report."""
    from rich.console import Console
    from rich.live import Live

    from registry.model_registry import ModelRegistry
    from streams.contract.windows import read_window
    from streams.fraud.evaluation import detection_scores
    from streams.kafka.topics import ensure_topics
    from streams.local.cluster import ClusterConfig, LocalCluster
    from streams.local.report import freshness_seconds, percentiles

    console = Console()
    out = (out or settings.data_dir / "demo").resolve()
    state = out / "state"
    shutil.rmtree(state, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    is_ratings = dataset is not None and dataset.name.lower().startswith(("u.data", "ratings"))
    attack = attack or ("bandwagon:0.05:0.03" if is_ratings else "click_farm:0.05:0.02")
    events, labels, targets = build_stream(dataset, n_events, attack, seed)
    attackers = set(labels)
    records = list(_records(events, bad_fraction, seed))
    users = sorted({e["user_id"] for e in events} - attackers)
    console.print(
        f"[bold]stream[/] {len(events)} events ({len(attackers)} attackers, {attack}), "
        f"{len(records) - len(events)} malformed, replayed at {rate:.0f}/s"
    )

    started = time.monotonic()
    timeline: list[tuple[float, float]] = []
    cluster = LocalCluster(ClusterConfig(state_dir=state, bootstrap=settings.kafka_bootstrap))
    traffic = None
    try:
        bootstrap = cluster.start_broker()
        ensure_topics(
            bootstrap,
            [
                settings.events_topic,
                settings.deadletter_topic,
                settings.batches_topic,
                settings.fraud_flags_topic,
                settings.rec_requests_topic,
                settings.recommendations_topic,
                settings.model_updates_topic,
            ],
            settings.topic_partitions,
        )
        for name in ("worker", "trainer", "scorer"):
            cluster.start(name)
            console.print(f"[bold]{name}[/] up, metrics at {cluster.metrics_url(name)}")
        traffic = Traffic(bootstrap, settings, records, rate, 20.0, users, seed).start()
        deadline = started + duration
        with Live(console=console, refresh_per_second=2) as live:
            settled_since = None
            while time.monotonic() < deadline:
                elapsed = time.monotonic() - started
                live.update(_live_table(cluster, traffic, elapsed))
                worker, trainer = cluster.metrics("worker"), cluster.metrics("trainer")
                done = sum(
                    _total(worker, n)
                    for n in (
                        "advrec_events_processed_total",
                        "advrec_dead_letters_total",
                        "advrec_events_duplicate_total",
                    )
                )
                timeline.append((elapsed, _total(worker, "advrec_events_processed_total")))
                # Settled: everything replayed was handled, no batch waits for training, and the
                # scorer serves the newest champion (checked over a few seconds).
                settled = (
                    traffic.replay_done.is_set()
                    and done >= len(records)
                    and trainer.get("advrec_batches_pending", 1) == 0
                )
                if settled:
                    # quiet long enough for the last window to close, train, register and be served
                    settled_since = settled_since or time.monotonic()
                    if time.monotonic() - settled_since > 25:
                        break
                else:
                    settled_since = None
                time.sleep(1.0)
        worker = cluster.metrics("worker")
        flagged = _final_flags(bootstrap, settings.fraud_flags_topic)
    finally:
        if traffic is not None:
            traffic.close()
        cluster.stop()
    elapsed = time.monotonic() - started
    console.print(f"[bold]loop finished[/] after {elapsed:.0f} s; writing the report")

    registry = ModelRegistry(cluster.mlflow_uri, settings.model_name)
    versions = registry.list_versions()
    champion = next((v for v in versions if "champion" in v["aliases"]), None)
    window_files = sorted((state / "windows").rglob("*.parquet"))
    windows = (
        pd.concat(
            [
                read_window(f.as_uri()).to_pandas().assign(path=f.relative_to(state / "windows").as_posix())
                for f in window_files
            ]
        )
        if window_files
        else pd.DataFrame()
    )

    round_of_version = {}
    for row in versions:
        tag = registry.version_tags(row["version"]).get("lineage.round")
        if tag not in (None, "", "null"):
            round_of_version[row["version"]] = int(float(tag))
    arrivals_by_round = {}
    for path in (state / "models").glob("round-*.json"):
        lineage = json.loads(path.read_text())["lineage"]
        files = {b["path"] for b in lineage.get("batches", [])}
        rows = windows[windows["path"].isin(files)] if len(windows) else windows
        arrivals_by_round[int(lineage["round"])] = list(rows["kafka_ts"]) if len(rows) else []
    first_served: dict[int, float] = {}
    for answer in traffic.answers if traffic else []:
        version = int(answer.get("model_version") or 0)
        if version:
            first_served[version] = min(first_served.get(version, answer["served_at"]), answer["served_at"])
    fresh = freshness_seconds(arrivals_by_round, round_of_version, first_served)
    users = {e["user_id"] for e in events}
    detection = detection_scores(flagged & users, users, {a: "attack" for a in attackers})
    lift = _target_lift(windows, attackers, flagged, targets, seed) if targets and len(windows) else None
    latencies = [
        1e3 * (a["received_at"] - traffic.requested[a["request_id"]])
        for a in traffic.answers
        if a["request_id"] in traffic.requested
    ]

    report = {
        "events": int(_total(worker, "advrec_events_processed_total")),
        "dead_letters": int(_total(worker, "advrec_dead_letters_total")),
        "inputs": len(records),
        "detection": detection,
        "attack": attack,
        "models": {
            "trained": len(versions),
            "promoted": sum(1 for v in versions if v["decision"] == "promote"),
            "rejected": sum(1 for v in versions if v["decision"] == "reject"),
            "held": sum(1 for v in versions if v["decision"] == "hold"),
        },
        "champion": (
            {
                "version": champion["version"],
                "hr@10": champion["hr@10"],
                "ndcg@10": champion["ndcg@10"],
                "fgsm_ndcg_drop@0.25": champion["fgsm_drop"],
            }
            if champion
            else None
        ),
        "target_lift": lift,
        "freshness_seconds": {**percentiles(fresh), "events_measured": int(len(fresh))},
        "serving": {
            "requests": len(traffic.requested) if traffic else 0,
            "answered": len(latencies),
            "end_to_end_ms": percentiles(np.asarray(latencies), (50, 95, 99)),
        },
        "sample_recommendations": [
            {k: a[k] for k in ("user_id", "items", "model_version")} for a in (traffic.answers[-3:] if traffic else [])
        ],
        "seconds": round(elapsed, 1),
        "dataset": str(dataset) if dataset else "simulator",
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float))
    plots = _plots(out, timeline, versions, fresh)
    (out / "report.md").write_text(_markdown(report, versions, plots))
    console.print_json(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "events",
                    "dead_letters",
                    "detection",
                    "models",
                    "champion",
                    "target_lift",
                    "freshness_seconds",
                )
            },
            default=float,
        )
    )
    console.print(f"report: {out / 'report.md'} and {out / 'report.json'}")


def _markdown(report: dict, versions: list[dict], plots: list[str]) -> str:
    def fmt(x):
        return "–" if x is None else (f"{x:.4f}" if isinstance(x, float) else str(x))

    lines = [
        "# advrec demo report",
        "",
        f"Dataset: {report['dataset']}; attack: {report['attack']}; run time {report['seconds']} s.",
        "",
        "| what | value |",
        "|---|---|",
        f"| inputs replayed | {report['inputs']} |",
        f"| events processed | {report['events']} |",
        f"| dead-lettered | {report['dead_letters']} |",
    ]
    d = report["detection"]
    lines += [
        f"| detection precision / recall / F1 | {fmt(d['precision'])} / {fmt(d['recall'])} / {fmt(d['f1'])} |",
        f"| false-positive rate | {fmt(d['fpr'])} |",
    ]
    m = report["models"]
    lines += [
        f"| models trained / promoted / held / rejected | {m['trained']} / {m['promoted']} / {m['held']} / "
        f"{m['rejected']} |"
    ]
    if report["champion"]:
        c = report["champion"]
        lines += [
            f"| champion | version {c['version']}, HR@10 {fmt(c['hr@10'])}, NDCG@10 {fmt(c['ndcg@10'])}, "
            f"NDCG drop under FGSM ε=0.25 {fmt(c['fgsm_ndcg_drop@0.25'])} |"
        ]
    if report["target_lift"]:
        t = report["target_lift"]
        lines += [
            f"| target HR@50: clean / undefended / defended | {fmt(t['clean_hr@50'])} / "
            f"{fmt(t['undefended_hr@50'])} / {fmt(t['defended_hr@50'])} |",
            f"| target lift undefended / defended | {fmt(t['undefended'])} / {fmt(t['defended'])} |",
        ]
    f = report["freshness_seconds"]
    lines += [f"| freshness p50 / p95 (s) | {fmt(f['p50'])} / {fmt(f['p95'])} ({f['events_measured']} events) |"]
    s = report["serving"]
    lines += [
        f"| requests answered | {s['answered']} of {s['requests']} |",
        f"| request→answer through Kafka p50 / p95 / p99 (ms) | {fmt(s['end_to_end_ms']['p50'])} / "
        f"{fmt(s['end_to_end_ms']['p95'])} / {fmt(s['end_to_end_ms']['p99'])} |",
        "",
        "## Versions",
        "",
        "| version | aliases | decision | HR@10 | NDCG@10 | FGSM drop | reasons |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in sorted(versions, key=lambda r: r["version"]):
        lines.append(
            f"| {v['version']} | {', '.join(v['aliases'])} | {v['decision']} | {fmt(v['hr@10'])} | "
            f"{fmt(v['ndcg@10'])} | {fmt(v['fgsm_drop'])} | {v['reasons']} |"
        )
    lines += ["", "## Sample recommendations", ""]
    for rec in report["sample_recommendations"]:
        lines.append(
            f"- user {rec['user_id']} (model {rec['model_version']}): {', '.join(map(str, rec['items'][:10]))}"
        )
    lines += [""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
