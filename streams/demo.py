"""`advrec demo`: the whole pipeline on embedded defaults, ending with a summary of what happened.

Composition root: starts the embedded broker (unless ADVREC_KAFKA_BOOTSTRAP names one), a stream
worker as a child process, replays a dataset or the simulator with a sprinkle of malformed
events, waits until every input is accounted for, and writes `report.json`.
"""
from __future__ import annotations

import json
import random
import time
from contextlib import ExitStack
from pathlib import Path

import click

from streams.settings import Settings

__all__ = ["demo"]

MALFORMED = [b"{broken json", b"[]", b'{"event_id": "x", "type": "click"}',
             b'{"event_id": "x", "user_id": "u", "item_id": "i", "type": "like", "ts": 1.7e9}']


def _with_bad_input(events, fraction: float, seed: int):
    """Interleave malformed payloads (as raw bytes) into an event stream, to exercise dead letters."""
    rng = random.Random(seed)
    for event in events:
        yield json.dumps(event).encode(), event["user_id"].encode()
        if rng.random() < fraction:
            yield rng.choice(MALFORMED), None


@click.command()
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A dataset to replay (MovieLens u.data, Taobao UserBehavior.csv); default: the simulator.")
@click.option("--events", "n_events", type=int, default=50_000, show_default=True,
              help="Events to replay (simulator size, or a limit on the dataset).")
@click.option("--bad-fraction", type=float, default=0.005, show_default=True,
              help="Share of malformed inputs mixed in, to show dead-lettering.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the report goes (default: DATA_DIR/demo).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--timeout", "timeout_s", type=float, default=240.0, show_default=True,
              help="Give up waiting for the worker after this many seconds.")
def demo(dataset, n_events, bad_fraction, out, seed, timeout_s) -> None:
    """Run broker + worker + replay on embedded defaults and print what was processed."""
    from rich.console import Console
    from rich.table import Table

    from streams.broker import EmbeddedBroker, free_port
    from streams.commands import dataset_events
    from streams.processes import AdvrecProcess, metric_total, scrape_metrics
    from streams.topics import ensure_topics

    console = Console()
    settings = Settings()
    out = out or settings.data_dir / "demo"
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if settings.kafka_bootstrap:
            bootstrap = settings.kafka_bootstrap
        else:
            broker = stack.enter_context(EmbeddedBroker(settings.embedded_broker_port, log_path=out / "broker.log"))
            bootstrap = broker.bootstrap
        console.print(f"[bold]broker[/] {bootstrap}")
        ensure_topics(bootstrap, [settings.events_topic, settings.deadletter_topic], settings.topic_partitions, settings.replication_factor)
        web_port = free_port()
        app_id = f"{settings.app_id}-demo-{int(time.time())}"
        worker = AdvrecProcess(["worker"], {
            "ADVREC_KAFKA_BOOTSTRAP": bootstrap, "ADVREC_TANSU_WORKAROUNDS": str(settings.use_tansu_workarounds),
            "ADVREC_WEB_PORT": str(web_port), "ADVREC_APP_ID": app_id,
            "ADVREC_DATA_DIR": str(settings.data_dir / app_id)}, out / "worker.log").start()
        stack.callback(worker.stop)
        metrics_url = f"http://127.0.0.1:{web_port}/metrics"
        worker.wait_http(metrics_url, timeout_s=60)
        console.print(f"[bold]worker[/] http://127.0.0.1:{web_port} (profiles at /profiles/USER, metrics at /metrics)")

        events = dataset_events(dataset, "auto", None, None, n_events, seed)
        records = list(_with_bad_input((e for _, e in zip(range(n_events), events)), bad_fraction, seed))
        from streams.producer import send_raw

        started = time.monotonic()
        sent = send_raw(bootstrap, settings.events_topic, ((key, value) for value, key in records))
        bad = sum(1 for _, key in records if key is None)
        console.print(f"[bold]replayed[/] {sent} inputs ({bad} malformed on purpose)")

        deadline = time.monotonic() + timeout_s
        while True:
            samples = scrape_metrics(metrics_url)
            processed = metric_total(samples, "advrec_events_processed_total")
            dead = metric_total(samples, "advrec_dead_letters_total")
            duplicates = metric_total(samples, "advrec_events_duplicate_total")
            if processed + dead + duplicates >= sent or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started

    by_type = {k.split('"')[1]: int(v) for k, v in samples.items() if k.startswith("advrec_events_processed_total{")}
    by_reason = {k.split('"')[1]: int(v) for k, v in samples.items() if k.startswith("advrec_dead_letters_total{")}
    report = {"inputs": sent, "events": int(processed), "dead_letters": int(dead), "duplicates": int(duplicates),
              "processed_by_type": by_type, "dead_letters_by_reason": by_reason,
              "accounted_for": int(processed + dead + duplicates) == sent,
              "seconds": round(elapsed, 2), "events_per_second": round(sent / elapsed, 1),
              "dataset": str(dataset) if dataset else "simulator"}
    (out / "report.json").write_text(json.dumps(report, indent=2))

    table = Table(title="advrec demo: what was processed")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("inputs replayed", str(sent))
    for kind, n in sorted(by_type.items()):
        table.add_row(f"  processed: {kind}", str(n))
    for code, n in sorted(by_reason.items()):
        table.add_row(f"  dead-lettered: {code}", str(n))
    table.add_row("duplicates skipped", str(int(duplicates)))
    table.add_row("every input accounted for", "yes" if report["accounted_for"] else "[red]NO[/]")
    table.add_row("throughput (inputs/s, end to end)", f"{report['events_per_second']:.0f}")
    console.print(table)
    console.print(f"report: {out / 'report.json'}")
    if not report["accounted_for"]:
        raise click.ClickException(f"only {int(processed + dead + duplicates)} of {sent} inputs accounted for "
                                   f"after {timeout_s}s; see {out / 'worker.log'}")
