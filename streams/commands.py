"""Composition roots of the streaming processes: `advrec broker`, `worker`, `produce`, `demo`.

Each command builds the one Settings object, resolves the broker, and wires its process.
"""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import click

from streams.settings import Settings

__all__ = ["broker", "worker", "produce", "resolve_bootstrap", "tansu_workarounds"]


def _broker_file(settings: Settings) -> Path:
    return settings.data_dir / "broker.json"


def _announced(settings: Settings) -> dict | None:
    path = _broker_file(settings)
    return json.loads(path.read_text()) if path.exists() else None


def resolve_bootstrap(settings: Settings) -> str:
    """The broker to use: ADVREC_KAFKA_BOOTSTRAP, else the one `advrec broker` announced."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    announced = _announced(settings)
    if announced:
        return announced["bootstrap"]
    raise click.ClickException(
        "no broker: set ADVREC_KAFKA_BOOTSTRAP=host:port, or start the embedded one with `advrec broker`")


def tansu_workarounds(settings: Settings) -> bool:
    """Whether the clients must work around Tansu: as configured, else when the announced broker is Tansu."""
    if settings.tansu_workarounds is not None:
        return settings.tansu_workarounds
    if settings.kafka_bootstrap:
        return False
    announced = _announced(settings)
    return bool(announced and announced.get("engine") == "tansu")


@click.command()
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 (default: ADVREC_EMBEDDED_BROKER_PORT, or free).")
@click.option("--engine", type=click.Choice(["auto", "kafka", "tansu"]), default=None,
              help="kafka: Apache Kafka 4.x (KRaft, needs Java); tansu: the fallback without Java; "
                   "auto: kafka where Java runs. Default: ADVREC_BROKER_ENGINE (auto).")
def broker(port: int | None, engine: str | None) -> None:
    """Run the embedded broker (Apache Kafka in KRaft mode, data under DATA_DIR/kafka) until interrupted."""
    from streams.broker import EmbeddedBroker
    from streams.topics import ensure_topics

    settings = Settings()
    if settings.kafka_bootstrap:
        raise click.ClickException(f"ADVREC_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} is set: nothing to start")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedBroker(settings.data_dir / "kafka", port or settings.embedded_broker_port,
                              engine=engine or settings.broker_engine, partitions=settings.topic_partitions,
                              cache_dir=settings.broker_cache_dir)
    click.echo(f"broker: starting {embedded.engine} on {embedded.bootstrap}…")
    embedded.start()
    try:
        ensure_topics(embedded.bootstrap, [settings.events_topic, settings.deadletter_topic],
                      settings.topic_partitions, settings.replication_factor)
        _broker_file(settings).write_text(json.dumps({"bootstrap": embedded.bootstrap, "engine": embedded.engine}))
        click.echo(f"broker ready: {embedded.engine} on {embedded.bootstrap} in {embedded.started_in_s:.1f} s, "
                   f"announced in {_broker_file(settings)} (Ctrl-C stops it)")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        _broker_file(settings).unlink(missing_ok=True)
        embedded.stop()


@click.command()
@click.option("--loglevel", default="warning", show_default=True)
def worker(loglevel: str) -> None:
    """Run a stream worker: validation, dead letters, profiles, HTTP views (/profiles, /metrics)."""
    import faust

    from streams.app import create_app
    from streams.topics import ensure_topics

    settings = Settings()
    bootstrap = resolve_bootstrap(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_topics(bootstrap, [settings.events_topic, settings.deadletter_topic], settings.topic_partitions, settings.replication_factor)
    app = create_app(settings, bootstrap, tansu_workarounds=tansu_workarounds(settings))

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger, level: int) -> None:
            # mode leaves the root logger at DEBUG and filters in the handler, so every
            # debug call in aiokafka/faust builds a LogRecord: ~8% of the worker's CPU.
            super().on_setup_root_logger(logger, level)
            logger.setLevel(level)

    Worker(app, loglevel=loglevel.upper(), quiet=True).execute_from_commandline()


def _parse_mapping(text: str) -> dict[str, str]:
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise click.BadParameter("expected FIELD=COLUMN[,FIELD=COLUMN...]", param_hint="--map")
    return {field.strip(): column.strip() for field, column in pairs}


def dataset_events(dataset: Path | None, fmt: str, mapping: str | None, implicit_threshold: float | None,
                   simulate: int, seed: int):
    """The event iterator for a dataset path (format auto-detected by name) or the simulator."""
    from streams import sources

    if dataset is None:
        return sources.simulated_events(n_events=simulate, seed=seed)
    if fmt == "auto":
        name = dataset.name.lower()
        fmt = ("movielens" if name.startswith("u.data") or name.endswith((".base", ".test"))
               else "taobao" if name.startswith("userbehavior") else "table")
    if fmt == "movielens":
        return sources.movielens_events(dataset, implicit_threshold)
    if fmt == "taobao":
        return sources.taobao_events(dataset)
    if not mapping:
        raise click.UsageError("--map FIELD=COLUMN,... is required for a generic CSV/Parquet file")
    return sources.table_events(dataset, _parse_mapping(mapping))


def _retimed(events, now: float):
    """Shift timestamps so that the first event happens now, keeping the gaps between events."""
    offset = None
    for event in events:
        if offset is None:
            offset = now - event["ts"]
        yield {**event, "ts": event["ts"] + offset}


@click.command()
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="MovieLens u.data, Taobao UserBehavior.csv, or any CSV/Parquet (with --map). Default: simulator.")
@click.option("--format", "fmt", type=click.Choice(["auto", "movielens", "taobao", "table"]), default="auto")
@click.option("--map", "mapping", default=None, help="Columns of a generic file: user_id=U,item_id=I,ts=T[,type=K,value=V].")
@click.option("--implicit-threshold", type=float, default=None,
              help="MovieLens: rating ≥ this → purchase, else click (default: keep ratings).")
@click.option("--rate", type=float, default=0.0, help="Events per second; 0 = as fast as possible.")
@click.option("--limit", type=int, default=None, help="Stop after this many events.")
@click.option("--simulate", type=int, default=20_000, show_default=True, help="Events the simulator makes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--retime/--keep-time", default=False, help="Shift timestamps so the replay starts now.")
@click.option("--progress/--no-progress", default=True)
def produce(dataset, fmt, mapping, implicit_threshold, rate, limit, simulate, seed, retime, progress) -> None:
    """Replay a dataset (or the simulator) into the `events` topic with kafka-python."""
    from streams.producer import produce_events
    from streams.topics import ensure_topics

    settings = Settings()
    bootstrap = resolve_bootstrap(settings)
    ensure_topics(bootstrap, [settings.events_topic, settings.deadletter_topic], settings.topic_partitions, settings.replication_factor)
    events = dataset_events(dataset, fmt, mapping, implicit_threshold, simulate, seed)
    if retime:
        events = _retimed(events, time.time())
    sent = produce_events(bootstrap, settings.events_topic, events, rate=rate, limit=limit, progress=progress)
    click.echo(f"sent {sent} events to {settings.events_topic} on {bootstrap}")
