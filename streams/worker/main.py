"""`advrec worker`: the composition root of a stream worker (validation, dead letters, profiles,
fraud detection, windows, HTTP views). Builds the Settings once and wires the Faust app."""

from __future__ import annotations

import click

from streams.contract.settings import Settings

__all__ = ["worker"]


@click.command()
@click.option("--loglevel", default="warning", show_default=True)
def worker(loglevel: str) -> None:
    """Run a stream worker: validation, dead letters, profiles, HTTP views (/profiles, /metrics)."""
    from streams.kafka.address import resolve_bootstrap, tansu_workarounds
    from streams.kafka.faust_app import run_worker
    from streams.kafka.topics import ensure_topics
    from streams.worker.app import create_app

    settings = Settings()
    bootstrap = resolve_bootstrap(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Every topic before the app subscribes: Faust ignores topics missing at start until a rebalance.
    for topic, partitions in settings.worker_topics().items():
        ensure_topics(
            bootstrap, [topic], partitions, settings.replication_factor, compact=topic in settings.compacted_topics
        )

    app = create_app(settings, bootstrap, tansu_workarounds=tansu_workarounds(settings))
    ready = (
        f"worker ready: {settings.events_topic} on {bootstrap}, windows to {settings.windows_location}, "
        f"views and /metrics on {settings.web_bind}:{settings.web_port}"
    )
    run_worker(app, loglevel, ready)
