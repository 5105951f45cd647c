"""CLI commands of the training side (composition roots): `advrec eval-model`, `advrec train`."""
from __future__ import annotations

import json

import click

__all__ = ["eval_model", "train_stream"]


@click.command("eval-model")
@click.option("--ratings", "ratings", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Interaction file: user item [rating [timestamp]], any format read_ratings accepts.")
@click.option("--model", "model", type=click.Choice(["bpr", "apr", "both"]), default="both", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epoch budget per model (APR's BPR warm-up included); default: the tuned default.")
@click.option("--seed", type=int, default=0, show_default=True)
def eval_model(ratings: str, model: str, epochs: int | None, seed: int) -> None:
    """Split leave-last-out, train BPR and/or APR, print accuracy and FGSM robustness as JSON."""
    from training.data import read_ratings
    from training.offline import eval_models

    kinds = ("bpr", "apr") if model == "both" else (model,)
    report = eval_models(read_ratings(ratings), kinds, epochs=epochs, seed=seed)
    click.echo(json.dumps(report, indent=2))


def _round_handler(settings, use_registry: bool):
    """Save each round's files and, with the registry, log/register it and run the promotion gate."""
    from training.trainer import save_round_files

    save_files = save_round_files(settings.data_dir / "models")
    if not use_registry:
        return save_files
    from registry.commands import build_registry

    registry = build_registry(settings, export_metrics=True)

    def on_round(model, report: dict, lineage: dict) -> None:
        save_files(model, report, lineage)
        batches = lineage.get("batches") or []
        arrivals = [b["min_kafka_ts"] for b in batches if b.get("min_kafka_ts")]
        lineage = {**lineage, "batch_files": [b.get("path") for b in batches],
                   "oldest_arrival": min(arrivals) if arrivals else None,
                   "newest_arrival": max((b.get("max_kafka_ts") or 0 for b in batches), default=None)}
        # Raises RegistryUnavailable after bounded retries: the round then fails and its batches
        # stay pending (the trainer rolls back and retries), so no batch is lost to an MLflow outage.
        registry.on_round(model, {**report, "eval_users": report.get("test_users")}, lineage)

    return on_round


@click.command("train")
@click.option("--model", "kind", type=click.Choice(["apr", "bpr"]), default="apr", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True, help="Epochs per round.")
@click.option("--first-epochs", type=click.IntRange(min=1), default=40, show_default=True,
              help="Epochs of the first round when it starts from scratch.")
@click.option("--max-rounds", type=click.IntRange(min=1), default=None, help="Exit after this many rounds.")
@click.option("--idle-timeout", type=float, default=None,
              help="Exit after this many seconds without a new batch (training what is pending first).")
@click.option("--min-batch-rows", type=click.IntRange(min=1), default=1, show_default=True,
              help="Accumulate announced batches until they hold this many rows.")
@click.option("--init-model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Warm-start the first round from this saved model (ignored when a trainer state exists).")
@click.option("--replay-rows", type=click.IntRange(min=0), default=200_000, show_default=True,
              help="Rows kept in the replay buffer.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--registry/--no-registry", "use_registry", default=True, show_default=True,
              help="Register every round in MLflow and run the promotion gate (else only save files).")
@click.option("--loglevel", default="info", show_default=True)
def train_stream(kind, epochs, first_epochs, max_rounds, idle_timeout, min_batch_rows, init_model, replay_rows, seed,
                 use_registry, loglevel) -> None:
    """Train warm-started rounds on the window batches announced on `batches`; report each round."""
    import logging

    import torch
    from prometheus_client import start_http_server

    from streams.commands import resolve_bootstrap, tansu_workarounds
    from streams.settings import Settings
    from streams.topics import ensure_topics
    from streams.windows import read_window
    from training.metrics import PrometheusTrainerMetrics
    from training.sources import KafkaBatchSource
    from training.trainer import Quarantine, StateStore, Trainer, TrainerConfig, run, save_round_files

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = Settings()
    bootstrap = resolve_bootstrap(settings)
    ensure_topics(bootstrap, [settings.batches_topic, settings.fraud_flags_topic], settings.topic_partitions,
                  settings.replication_factor)
    start_http_server(settings.trainer_metrics_port, addr=settings.web_bind)
    config = TrainerConfig(model=kind, epochs=epochs, first_epochs=first_epochs, min_batch_rows=min_batch_rows, replay_rows=replay_rows, seed=seed)
    trainer = Trainer(config, StateStore(settings.data_dir / "trainer"),
                      read_batch=lambda uri: read_window(uri).to_pandas(),
                      on_round=_round_handler(settings, use_registry), init_model=init_model,
                      metrics=PrometheusTrainerMetrics())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    click.echo(f"trainer: {kind} on {device}, state round {trainer.state.round}, "
               f"metrics on {settings.web_bind}:{settings.trainer_metrics_port}")
    source = KafkaBatchSource(bootstrap, settings.batches_topic, settings.fraud_flags_topic,
                              group_id=f"{settings.app_id}-trainer",
                              tansu_workarounds=tansu_workarounds(settings))
    try:
        results = run(trainer, source, Quarantine(), max_rounds=max_rounds, idle_timeout=idle_timeout)
    finally:
        source.close()
    click.echo(f"trainer: {len(results)} rounds, state round {trainer.state.round}")
