"""`advrec scorer`: the composition root of the scorer process (serves the MLflow champion)."""

from __future__ import annotations

import logging

import click

from streams.contract.settings import Settings

__all__ = ["scorer"]


@click.command()
@click.option("--loglevel", default="warning", show_default=True)
def scorer(loglevel: str) -> None:
    """Run the scorer: serve the MLflow champion on `rec.requests` → `recommendations` (/metrics, /model)."""
    import torch
    from threadpoolctl import threadpool_limits

    from registry.wiring import build_registry
    from streams.kafka.address import resolve_bootstrap, tansu_workarounds
    from streams.kafka.faust_app import run_worker
    from streams.kafka.topics import ensure_topics
    from streams.serving.app import create_scorer_app
    from streams.serving.core import ScorerCore
    from streams.serving.watcher import ModelWatcher

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Small per-batch products: multi-threaded BLAS only thrashes (p99 1.1 ms → 0.25 ms single-threaded
    # in benchmarks/scorer.py), and so would torch's top-k. Scale with scorer processes instead.
    threadpool_limits(1)
    torch.set_num_threads(1)
    settings = Settings()
    bootstrap = resolve_bootstrap(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_topics(
        bootstrap,
        [settings.rec_requests_topic, settings.recommendations_topic, settings.rec_deadletter_topic],
        settings.topic_partitions,
        settings.replication_factor,
    )
    ensure_topics(bootstrap, [settings.model_updates_topic], 1, settings.replication_factor)
    core = ScorerCore(settings.scorer_max_k)
    registry = build_registry(settings, export_metrics=False, announce=False)
    watcher = ModelWatcher(core, registry, settings.serve_alias)
    watcher.install(watcher.load_if_changed(), count=False)  # the champion at start, if MLflow has one and answers
    app = create_scorer_app(settings, bootstrap, tansu_workarounds(settings), core, watcher)
    served = core.model.version if core.model is not None else "popularity (no version yet)"
    ready = (
        f"scorer ready: {settings.rec_requests_topic} → {settings.recommendations_topic} on {bootstrap}, "
        f"serving {settings.model_name}@{settings.serve_alias} (now: {served}) from {settings.mlflow_uri}, "
        f"/metrics on {settings.web_bind}:{settings.scorer_metrics_port}"
    )
    run_worker(app, loglevel, ready)
