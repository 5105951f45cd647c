"""`advrec worker`, `advrec detector` and `advrec windows`: the composition roots of a stream worker
(validation, dead letters, profiles, fraud detection, windows, HTTP views), of the fraud detector
in its own process (with `fraud_in_worker` off) and of the window sink in its own (with
`windows_in_worker` off). Each builds the Settings once and wires its Faust app."""

from __future__ import annotations

import click

from streams.contract.settings import Settings

__all__ = ["worker", "detector", "windows"]


def _prepare(settings: Settings) -> str:
    """The broker's address, once every topic of the worker exists (Faust ignores topics missing
    at start until a rebalance) and the data directory is there."""
    from streams.kafka.address import resolve_bootstrap
    from streams.kafka.topics import ensure_topics

    bootstrap = resolve_bootstrap(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for topic, partitions in settings.worker_topics().items():
        ensure_topics(bootstrap, [topic], partitions, settings.replication_factor, compacted=settings.compacted_topics)
    return bootstrap


def _run(create_app, settings: Settings, loglevel: str, ready) -> None:
    """Build the app on the broker (its topics and changelogs made first) and run it until stopped;
    `ready(bootstrap)` is the line it logs once serving."""
    from streams.kafka.address import tansu_workarounds
    from streams.kafka.faust_app import ensure_changelogs, run_worker

    bootstrap = _prepare(settings)
    app = create_app(settings, bootstrap, tansu_workarounds=tansu_workarounds(settings))
    ensure_changelogs(app, bootstrap, settings.replication_factor)
    run_worker(app, loglevel, ready(bootstrap))


@click.command()
@click.option("--loglevel", default="warning", show_default=True)
def worker(loglevel: str) -> None:
    """Run a stream worker: validation, dead letters, profiles, HTTP views (/profiles, /metrics)."""
    from streams.worker.app import create_app

    settings = Settings()
    fraud = "in this worker" if settings.fraud_in_worker else "in `advrec detector`"
    windows = f"to {settings.windows_location}" if settings.windows_in_worker else "in `advrec windows`"
    _run(
        create_app,
        settings,
        loglevel,
        lambda bootstrap: (
            f"worker ready: {settings.events_topic} on {bootstrap}, windows {windows}, "
            f"fraud detector {fraud if settings.fraud_enabled else 'off'}, "
            f"views and /metrics on {settings.web_bind}:{settings.web_port}"
        ),
    )


@click.command()
@click.option("--loglevel", default="warning", show_default=True)
def detector(loglevel: str) -> None:
    """Run the fraud detector in its own process: fraud.events in, verdicts and fraud.flags out (/fraud, /metrics).

    For deployments with ADVREC_FRAUD_IN_WORKER=false, so that the workers spend no CPU on it.
    """
    from streams.worker.app import create_detector_app

    settings = Settings()
    if settings.fraud_in_worker or not settings.fraud_enabled:
        raise click.UsageError(
            "the detector process needs ADVREC_FRAUD_IN_WORKER=false (else the workers run it) "
            "and ADVREC_FRAUD_ENABLED=true"
        )
    _run(
        create_detector_app,
        settings,
        loglevel,
        lambda bootstrap: (
            f"detector ready: {settings.fraud_events_topic} on {bootstrap}, flags to {settings.fraud_flags_topic}, "
            f"views and /metrics on {settings.web_bind}:{settings.detector_web_port}"
        ),
    )


@click.command()
@click.option("--loglevel", default="warning", show_default=True)
def windows(loglevel: str) -> None:
    """Run the window sink in its own process: events.valid in, Parquet windows and batches out (/metrics).

    For deployments with ADVREC_WINDOWS_IN_WORKER=false, so that the workers spend no CPU on it.
    Run as many as you like: they share events.valid's partitions (one consumer group).
    """
    from streams.worker.app import create_windows_app

    settings = Settings()
    if settings.windows_in_worker:
        raise click.UsageError("the window process needs ADVREC_WINDOWS_IN_WORKER=false (else the workers run it)")
    _run(
        create_windows_app,
        settings,
        loglevel,
        lambda bootstrap: (
            f"windows ready: {settings.valid_topic} on {bootstrap}, windows to {settings.windows_location}, "
            f"announced on {settings.batches_topic}, /metrics on {settings.web_bind}:{settings.windows_web_port}"
        ),
    )
