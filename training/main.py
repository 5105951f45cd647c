"""Composition roots of the training side: `advrec eval-model` and `advrec train`.

`advrec train` either bootstraps a champion from a file (`--from-file`) or runs the stream trainer
on the window batches announced on `batches`. Both plug the registry (MLflow, promotion gate) into
the pure trainer here: this module is the only training module that imports `registry`, and
the only one that reaches up to `streams.adversary` (the learned red-team attacker, `probe_attack`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from pathlib import Path

import click

from streams.contract.settings import Settings

__all__ = ["eval_model", "eval_cold_start", "train", "probe_attack"]

log = logging.getLogger(__name__)

STREAM_EPOCHS = 5  # epochs per stream round, unless --epochs says otherwise


@click.command("eval-model")
@click.option(
    "--ratings",
    "ratings",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Interaction file: user item [rating [timestamp]], any format read_ratings accepts.",
)
@click.option("--model", "model", type=click.Choice(["bpr", "apr", "both"]), default="both", show_default=True)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epoch budget per model (APR's BPR warm-up included); default: the tuned default.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def eval_model(ratings: str, model: str, epochs: int | None, seed: int) -> None:
    """Split leave-last-out, train BPR and/or APR, print accuracy and FGSM robustness as JSON."""
    from streams.sources.datasets import read_ratings
    from training.offline import eval_models

    kinds = ("bpr", "apr") if model == "both" else (model,)
    report = eval_models(read_ratings(ratings), kinds, epochs=epochs, seed=seed)
    click.echo(json.dumps(report, indent=2))


def text_encoder(settings: Settings, lazy: bool = True):
    """The configured text encoder behind the embedding cache (loaded only on a cache miss when lazy)."""
    from training.text.encoders import get_encoder

    return get_encoder(
        settings.text_encoder, cache=settings.text_cache_path, lazy=lazy, model_dir=settings.text_model_dir
    )


@click.command("eval-cold-start")
@click.option(
    "--ratings",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Interaction file: user item [rating [timestamp]], any format read_ratings accepts.",
)
@click.option(
    "--items",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Catalog: MovieLens u.item, movies.csv, or any CSV with --map.",
)
@click.option("--map", "mapping", default=None, help="Columns of a generic catalog CSV: item_id=I[,title=T,...].")
@click.option(
    "--cold-share", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.1, show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epoch budget (default: the tuned one).")
@click.option(
    "--inits",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Init seeds per model on the same split; figures are their means (one run's warm ratio is within noise).",
)
def eval_cold_start(
    ratings: str, items: str, mapping: str | None, cold_share: float, seed: int, epochs, inits: int
) -> None:
    """Hold out a share of items entirely, train the text hybrid on the rest, print cold and warm figures as JSON.

    Cold items: `text` against `popularity` (predicted from the catalog metadata) and `random_text`
    (the same model with random vectors as text), HR@10 / NDCG@10 with 99 sampled cold negatives;
    warm items: the hybrid against the ID-only model (NDCG@10), and both under FGSM. Each model is
    trained with --inits init seeds on the same split and averaged; `per_init` has each init's
    figures and `noise_floor` the ID-only model against itself with another init seed.
    """
    import torch

    from streams.sources.catalog import read_catalog
    from streams.sources.datasets import parse_mapping, read_ratings
    from training.cold_start import eval_cold_start as evaluate

    settings = Settings()
    torch.set_num_threads(1)  # the measured configuration (docs/text.md); deterministic on CPU
    catalog = read_catalog(items, parse_mapping(mapping) if mapping else None)
    report = evaluate(
        read_ratings(ratings),
        catalog,
        cold_share=cold_share,
        seed=seed,
        encoder=text_encoder(settings),
        epochs=epochs,
        baselines=("random_text", "popularity"),
        inits=inits,
    )
    click.echo(json.dumps(report, indent=2))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _round_handler(settings: Settings, use_registry: bool):
    """(on_round, champion source): save each round's files and, with the registry, register and gate it.

    Without the registry there is no gate: every evaluated round is accepted, and no champion source.
    """
    from training.stream.files import save_round_files

    save_files = save_round_files(settings.data_dir / "models")
    if not use_registry:
        return save_files, None
    from registry.wiring import build_registry

    registry = build_registry(settings, export_metrics=True)

    def on_round(model, report: dict, lineage: dict):
        save_files(model, report, lineage)
        batches = lineage.get("batches") or []
        arrivals = [b["min_kafka_ts"] for b in batches if b.get("min_kafka_ts")]
        lineage = {
            **lineage,
            "batch_files": [b.get("path") for b in batches],
            # The trainer's own figure covers rejected rounds' rows and only rows it trained.
            "oldest_arrival": lineage.get("oldest_arrival", min(arrivals) if arrivals else None),
            "newest_arrival": max((b.get("max_kafka_ts") or 0 for b in batches), default=None),
        }
        # Raises RegistryUnavailable after bounded retries: the round then fails and its batches
        # stay pending (the trainer rolls back and retries), so no batch is lost to an MLflow outage.
        return registry.on_round(model, report, lineage)

    return on_round, _RegistryChampion(registry)


class _RegistryChampion:
    """The registry as the trainer's `ChampionSource`: the champion alias, loaded on the trainer's device."""

    def __init__(self, registry) -> None:
        self.registry = registry

    def champion_version(self) -> int | None:
        """The version that holds the champion alias."""
        return self.registry.champion_version()

    def load_version(self, version: int):
        """The version's model, on the device its config names (CUDA where present)."""
        return self.registry.load_version(version, device="")


def probe_attack(settings: Settings):
    """The red-team probe's attack (`ADVREC_PROBE_ATTACK`): the bandwagon, or the learned attacker.

    The learned one lives in `streams.adversary`, above `training`: only this composition root reaches
    up to it, and hands it to the pure trainer and bootstrap round as a `training.bootstrap.ProbeAttack`.
    """
    if settings.probe_attack == "gan":
        from streams.adversary.red_team import gan_probe

        return functools.partial(gan_probe, steps=settings.probe_gan_steps, popularity=settings.probe_gan_popularity)
    from training.bootstrap import bandwagon_probe

    return bandwagon_probe


def _train_from_file(
    settings: Settings, from_file: Path, kind: str, epochs: int | None, seed: int, poison: bool
) -> None:
    """Bootstrap: train once from a file, evaluate, register, run the gate; print the outcome as JSON."""
    from registry.errors import RegistryError
    from registry.wiring import build_registry
    from streams.sources.datasets import read_ratings
    from training.bootstrap import bootstrap_round

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    try:
        registry = build_registry(settings, export_metrics=False)
        frame = read_ratings(from_file)
        current = registry.champion_version()
        champion = registry.load_version(current) if current is not None else None
        model, report, split = bootstrap_round(
            frame,
            kind,
            epochs=epochs,
            seed=seed,
            poison=poison,
            champion=champion,
            champion_version=current,
            probe_attack=probe_attack(settings),
        )
        lineage = {
            "source_file": str(from_file.resolve()),
            "source_sha256": _sha256(from_file),
            "rows": int(len(frame)),
            "batch_files": [],
            "kafka_offsets": {},
            "trainer_config": {
                "kind": kind,
                "epochs": epochs,
                "seed": seed,
                "poison": poison,
                "probe_attack": settings.probe_attack,
                "mode": "bootstrap",
            },
        }
        version, decision = registry.register_round(
            model, report, lineage, params={"source": "from-file", "seed": seed}
        )
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps(
            {
                "version": version,
                "decision": decision.action,
                "reasons": list(decision.reasons),
                "hr@10": report["hr@10"],
                "ndcg@10": report["ndcg@10"],
                "champion": registry.champion_version(),
                "seconds": round(time.time() - started, 1),
            },
            indent=2,
        )
    )


def _train_stream(
    settings: Settings,
    kind: str,
    epochs: int,
    first_epochs: int,
    max_rounds: int | None,
    idle_timeout: float | None,
    flush_after: float | None,
    quarantine: bool,
    min_batch_rows: int,
    init_model: str | None,
    replay_rows: int,
    probe_every: int,
    seed: int,
    use_registry: bool,
    loglevel: str,
) -> None:
    """Train warm-started rounds on the window batches announced on `batches`; report each round."""
    import torch
    from prometheus_client import start_http_server

    from streams.contract.windows import read_window
    from streams.fraud.trust import TrustPolicy
    from streams.kafka.address import resolve_bootstrap, tansu_workarounds
    from streams.kafka.topics import ensure_topics
    from training.stream.kafka_source import KafkaBatchSource
    from training.stream.loop import run
    from training.stream.metrics import PrometheusTrainerMetrics
    from training.stream.quarantine import Quarantine
    from training.stream.signals import StopSignals
    from training.stream.state import StateStore
    from training.stream.trainer import Trainer, TrainerConfig

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    bootstrap = resolve_bootstrap(settings)
    ensure_topics(
        bootstrap,
        [settings.batches_topic, settings.fraud_flags_topic],
        settings.topic_partitions,
        settings.replication_factor,
        compacted=settings.compacted_topics,
    )
    start_http_server(settings.trainer_metrics_port, addr=settings.web_bind)
    from training.models import MODEL_KINDS

    item_text = None
    if MODEL_KINDS[kind].uses_item_text:
        from training.text.features import encode_items

        encoder = text_encoder(settings)
        item_text = lambda frame: encode_items(encoder, frame)  # noqa: E731
    config = TrainerConfig(
        model=kind,
        epochs=epochs,
        first_epochs=first_epochs,
        min_batch_rows=min_batch_rows,
        replay_rows=replay_rows,
        probe_every=probe_every,
        seed=seed,
        trust_gate=settings.trust_gate and settings.fraud_enabled and quarantine,
        trust=TrustPolicy.from_settings(settings),  # who is evaluated and audited: the stream's own policy
        quarantine=quarantine,
        probe_attack=settings.probe_attack,
    )
    on_round, champion = _round_handler(settings, use_registry)
    trainer = Trainer(
        config,
        StateStore(settings.data_dir / "trainer"),
        read_batch=lambda uri: read_window(uri).to_pandas(),
        on_round=on_round,
        init_model=init_model,
        metrics=PrometheusTrainerMetrics(),
        item_text=item_text,
        champion=champion,
        probe_attack=probe_attack(settings),
        commit_section=StopSignals().install().deferred,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    source = KafkaBatchSource(
        bootstrap,
        settings.batches_topic,
        settings.fraud_flags_topic,
        group_id=f"{settings.app_id}-trainer{settings.group_suffix}",
        tansu_workarounds=tansu_workarounds(settings),
        catalog_topic=settings.catalog_changelog_topic if item_text is not None else None,
        session_timeout_s=settings.group_session_timeout_s,
    )
    registers = (
        f"registering {settings.model_name} in {settings.mlflow_uri} "
        f"(promotion {'on' if settings.promotion else 'off'})"
        if use_registry
        else f"saving rounds under {settings.data_dir / 'models'} (no registry)"
    )
    click.echo(
        f"trainer ready: {settings.batches_topic} on {bootstrap}, {kind} on {device}, "
        f"quarantine {'on' if quarantine else 'off'}, trust gate {'on' if config.trust_gate else 'off'}, "
        f"state round {trainer.state.round}, {registers}, "
        f"/metrics on {settings.web_bind}:{settings.trainer_metrics_port}"
    )
    try:
        results = run(
            trainer,
            source,
            Quarantine(),
            max_rounds=max_rounds,
            idle_timeout=idle_timeout,
            flush_after=flush_after,
        )
    finally:
        source.close()
    click.echo(f"trainer: {len(results)} rounds, state round {trainer.state.round}")


@click.command("train")
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Bootstrap: train once from this ratings/interaction file, evaluate, register, gate "
    "(else: run the stream trainer on the window batches).",
)
@click.option(
    "--model",
    "kind",
    type=click.Choice(["apr", "bpr", "hybrid"]),
    default="apr",
    show_default=True,
    help="hybrid: ID + catalog text (APR), items known only from the catalog are scored from their text.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help=f"Stream: epochs per round (default {STREAM_EPOCHS}). --from-file: the epoch budget (default: the tuned one).",
)
@click.option(
    "--first-epochs",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="Stream: epochs of the first round when it starts from scratch.",
)
@click.option("--max-rounds", type=click.IntRange(min=1), default=None, help="Stream: exit after this many rounds.")
@click.option(
    "--idle-timeout",
    type=float,
    default=None,
    help="Stream: exit after this many seconds without a new batch (training what is pending first).",
)
@click.option(
    "--flush-after",
    type=float,
    default=None,
    help="Stream: once no batch has come for this many seconds, train what is pending even below "
    "--min-batch-rows (and keep running).",
)
@click.option(
    "--quarantine/--no-quarantine",
    default=True,
    show_default=True,
    help="Stream: drop the events of users the fraud detector flags (off: an undefended shadow trainer).",
)
@click.option(
    "--min-batch-rows",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Stream: accumulate announced batches until they hold this many rows.",
)
@click.option(
    "--init-model",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Stream: warm-start the first round from this saved model (ignored when a trainer state exists).",
)
@click.option(
    "--replay-rows",
    type=click.IntRange(min=0),
    default=200_000,
    show_default=True,
    help="Stream: rows kept in the replay buffer.",
)
@click.option(
    "--probe-every",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Stream: run the red-team poisoning probe every this many rounds (0: never, and the gate holds).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--poison/--no-poison",
    default=True,
    show_default=True,
    help="--from-file: probe poisoning robustness with the probe's attack (ADVREC_PROBE_ATTACK, bandwagon by "
    "default; trains a second model).",
)
@click.option(
    "--registry/--no-registry",
    "use_registry",
    default=True,
    show_default=True,
    help="Stream: register every round in MLflow and run the promotion gate (else only save files).",
)
@click.option("--loglevel", default="info", show_default=True)
def train(
    from_file,
    kind,
    epochs,
    first_epochs,
    max_rounds,
    idle_timeout,
    flush_after,
    quarantine,
    min_batch_rows,
    init_model,
    replay_rows,
    probe_every,
    seed,
    poison,
    use_registry,
    loglevel,
) -> None:
    """Train: once from a file (--from-file), or else warm-started rounds on the stream's window batches."""
    settings = Settings()
    if from_file is not None:
        _train_from_file(settings, from_file, kind, epochs, seed, poison)
        return
    _train_stream(
        settings,
        kind,
        epochs or STREAM_EPOCHS,
        first_epochs,
        max_rounds,
        idle_timeout,
        flush_after,
        quarantine,
        min_batch_rows,
        init_model,
        replay_rows,
        probe_every,
        seed,
        use_registry,
        loglevel,
    )
