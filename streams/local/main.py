"""Composition roots of the local tools: `advrec broker`, `produce`, `demo`.

Each command builds the one Settings object, resolves the broker, and wires its process.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import click

from streams.contract.settings import Settings
from streams.kafka.address import announce, resolve_bootstrap, withdraw

__all__ = ["broker", "produce", "demo"]


@click.command()
@click.option(
    "--port", type=int, default=None, help="Port on 127.0.0.1 (default: ADVREC_EMBEDDED_BROKER_PORT, or free)."
)
@click.option(
    "--engine",
    type=click.Choice(["auto", "kafka", "tansu"]),
    default=None,
    help="kafka: Apache Kafka 4.x (KRaft, needs Java); tansu: the fallback without Java; "
    "auto: kafka where Java runs. Default: ADVREC_BROKER_ENGINE (auto).",
)
def broker(port: int | None, engine: str | None) -> None:
    """Run the embedded broker (Apache Kafka in KRaft mode, data under DATA_DIR/kafka) until interrupted."""
    from streams.kafka.topics import ensure_topics
    from streams.local.broker import EmbeddedBroker

    settings = Settings()
    if settings.kafka_bootstrap:
        raise click.ClickException(f"ADVREC_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} is set: nothing to start")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedBroker(
        settings.data_dir / "kafka",
        port or settings.embedded_broker_port,
        engine=engine or settings.broker_engine,
        partitions=settings.topic_partitions,
        cache_dir=settings.broker_cache_dir,
    )
    click.echo(f"broker: starting {embedded.engine} on {embedded.bootstrap}…")
    embedded.start()
    try:
        ensure_topics(
            embedded.bootstrap,
            [settings.events_topic, settings.deadletter_topic],
            settings.topic_partitions,
            settings.replication_factor,
        )
        path = announce(settings, embedded.bootstrap, embedded.engine)
        click.echo(
            f"broker ready: {embedded.engine} on {embedded.bootstrap} in {embedded.started_in_s:.1f} s, "
            f"announced in {path} (Ctrl-C stops it)"
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        withdraw(settings)
        embedded.stop()


def _retimed(events, now: float):
    """Shift timestamps so that the first event happens now, keeping the gaps between events."""
    offset = None
    for event in events:
        if offset is None:
            offset = now - event["ts"]
        yield {**event, "ts": event["ts"] + offset}


@click.command()
@click.option(
    "--dataset",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="MovieLens u.data, Taobao UserBehavior.csv, or any CSV/Parquet (with --map). Default: simulator.",
)
@click.option("--format", "fmt", type=click.Choice(["auto", "movielens", "ratings", "taobao", "table"]), default="auto")
@click.option(
    "--map", "mapping", default=None, help="Columns of a generic file: user_id=U,item_id=I,ts=T[,type=K,value=V]."
)
@click.option(
    "--implicit-threshold",
    type=float,
    default=None,
    help="MovieLens: rating ≥ this → purchase, else click (default: keep ratings).",
)
@click.option(
    "--catalog",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Item catalog to send to the `catalog` topic: MovieLens u.item, movies.csv, or any CSV with --map "
    "item_id=I[,title=T,description=D,categories=C,year=Y]. Alone, only the catalog is sent.",
)
@click.option("--rate", type=float, default=0.0, help="Events per second; 0 = as fast as possible.")
@click.option("--limit", type=int, default=None, help="Stop after this many events.")
@click.option("--simulate", type=int, default=20_000, show_default=True, help="Events the simulator makes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--retime/--keep-time", default=False, help="Shift timestamps so the replay starts now.")
@click.option(
    "--envelope",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Events per message: >1 sends JSON arrays of events (envelopes), one event per message is the default.",
)
@click.option("--progress/--no-progress", default=True)
def produce(
    dataset, fmt, mapping, catalog, implicit_threshold, rate, limit, simulate, seed, retime, envelope, progress
) -> None:
    """Replay a dataset (or the simulator) into the `events` topic, or a catalog into `catalog`, with kafka-python."""
    from streams.kafka.producer import produce_events, send_raw
    from streams.kafka.topics import ensure_topics
    from streams.sources.datasets import open_events, parse_mapping
    from streams.sources.simulator import simulated_events

    settings = Settings()
    bootstrap = resolve_bootstrap(settings)
    if catalog is not None:
        from streams.contract.records import encode
        from streams.sources.catalog import catalog_entries, read_catalog

        entries = catalog_entries(read_catalog(catalog, parse_mapping(mapping) if mapping else None))
        ensure_topics(
            bootstrap, [settings.catalog_topic], settings.topic_partitions, settings.replication_factor, compact=True
        )
        sent = send_raw(bootstrap, settings.catalog_topic, ((e.item_id.encode(), encode(e)) for e in entries))
        click.echo(f"sent {sent} catalog entries to {settings.catalog_topic} on {bootstrap}")
        if dataset is None:
            return
        mapping = None  # --map described the catalog
    ensure_topics(
        bootstrap,
        [settings.events_topic, settings.deadletter_topic],
        settings.topic_partitions,
        settings.replication_factor,
    )
    if dataset is None:
        events = simulated_events(n_events=simulate, seed=seed)
    else:
        events = open_events(dataset, fmt, parse_mapping(mapping) if mapping else None, implicit_threshold)
    if retime:
        events = _retimed(events, time.time())
    sent = produce_events(
        bootstrap, settings.events_topic, events, rate=rate, limit=limit, progress=progress, envelope=envelope
    )
    click.echo(f"sent {sent} events to {settings.events_topic} on {bootstrap}")


@click.command()
@click.option(
    "--dataset",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A dataset to replay: MovieLens u.data or ratings.csv (userId,movieId,rating,timestamp), Taobao "
    "UserBehavior.csv, any file read_ratings understands, or a CSV/Parquet with --map. Default: the simulator.",
)
@click.option(
    "--map", "mapping", default=None, help="Columns of a generic file: user_id=U,item_id=I,ts=T[,type=K,value=V]."
)
@click.option("--events", "n_events", type=int, default=30_000, show_default=True, help="Genuine events to replay.")
@click.option(
    "--attack",
    default=None,
    help="TYPE:ATTACK_SIZE:FILLER_SIZE injected midway, or 'none' (default: click_farm:0.08:0.02 on the "
    "simulator, bandwagon:0.05:0.03 on ratings).",
)
@click.option(
    "--filler",
    type=click.Choice(["popular", "uniform"]),
    default="popular",
    show_default=True,
    help="How click-farm accounts pick filler items: by popularity (they look like genuine users) or uniformly.",
)
@click.option("--rate", type=float, default=700.0, show_default=True, help="Replay rate, events/s.")
@click.option(
    "--duration",
    type=float,
    default=240.0,
    show_default=True,
    help="Upper bound on the loop (seconds): it ends earlier once every window is trained and served.",
)
@click.option("--bad-fraction", type=float, default=0.003, show_default=True, help="Share of malformed inputs.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Report directory (default: DATA_DIR/demo); the run's state (MLflow store, logs) goes under OUT/state.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(dataset, mapping, n_events, attack, filler, rate, duration, bad_fraction, out, seed) -> None:
    """Run the whole loop on embedded defaults with an undefended shadow beside it, and write a report."""
    from streams.local.demo import run_demo
    from streams.sources.datasets import check_dataset, parse_mapping

    if dataset is not None:
        check_dataset(dataset, parse_mapping(mapping) if mapping else None)
    run_demo(
        Settings(), dataset, n_events, attack, rate, duration, bad_fraction, out, seed, filler=filler, mapping=mapping
    )
