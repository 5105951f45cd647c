"""Composition roots of the registry: `advrec train` (`--from-file`), `promote`, `rollback`, `models`.

`build_registry(settings)` is the one place that turns Settings into a `ModelRegistry` (gate bounds,
retries, the `model.updates` publisher when a broker is configured or announced); the stream
trainer uses it too, and plugs `registry.on_round` into its loop.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import time
from pathlib import Path

import click

from streams.settings import Settings

__all__ = ["build_registry", "train", "promote", "rollback", "models"]

log = logging.getLogger(__name__)


def _publisher(settings: Settings):
    """The `model.updates` publisher if a broker is configured or announced, else None."""
    from streams.commands import resolve_bootstrap

    try:
        bootstrap = resolve_bootstrap(settings)
    except click.ClickException:
        return None
    from registry.updates import UpdatePublisher

    return UpdatePublisher(bootstrap, settings.model_updates_topic, settings.replication_factor)


def build_registry(settings: Settings, export_metrics: bool = False, announce: bool = True):
    """The ModelRegistry of these settings (tracking URI, model name, gate, retries, announcements)."""
    from registry.promotion import GateConfig
    from registry.service import ModelRegistry

    return ModelRegistry(settings.mlflow_uri, settings.model_name, GateConfig.from_settings(settings),
                         cache_dir=settings.data_dir / "models", retries=settings.mlflow_retries,
                         backoff_s=settings.mlflow_retry_backoff_s,
                         notify=_publisher(settings) if announce else None, export_metrics=export_metrics)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--from-file", "from_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Bootstrap: train once from this ratings/interaction file, evaluate, register, gate.")
@click.option("--model", "kind", type=click.Choice(["apr", "bpr"]), default="apr", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epoch budget (default: the tuned one).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--poison/--no-poison", default=True, show_default=True,
              help="Probe poisoning robustness with a bandwagon attack (trains a second model).")
@click.pass_context
def train(ctx: click.Context, from_file: Path | None, kind: str, epochs: int | None, seed: int, poison: bool) -> None:
    """Train: once from a file (--from-file), or else run the stream trainer on window batches."""
    if from_file is None:
        try:
            module = importlib.import_module("training.commands")
            stream = getattr(module, "train_stream")
        except (ImportError, AttributeError) as exc:
            raise click.ClickException(
                "the stream trainer (training.commands:train_stream) is not installed in this build; "
                "use `advrec train --from-file FILE` to bootstrap a champion") from exc
        given = [f"{option}={ctx.params[name]}" for name, option in
                 (("kind", "--model"), ("epochs", "--epochs"), ("seed", "--seed"))
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        return stream.main(args=[*given, *ctx.args], prog_name="advrec train")

    from registry.bootstrap import bootstrap_round
    from registry.service import RegistryError
    from training.data import read_ratings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    try:
        registry = build_registry(settings, export_metrics=False)
        frame = read_ratings(from_file)
        current = registry.champion_version()
        champion = registry.load_version(current) if current is not None else None
        model, report, split = bootstrap_round(frame, kind, epochs=epochs, seed=seed, poison=poison,
                                               champion=champion)
        lineage = {"source_file": str(from_file.resolve()), "source_sha256": _sha256(from_file),
                   "rows": int(len(frame)), "batch_files": [], "kafka_offsets": {},
                   "trainer_config": {"kind": kind, "epochs": epochs, "seed": seed, "poison": poison,
                                      "mode": "bootstrap"}}
        version, decision = registry.register_round(model, report, lineage,
                                                    params={"source": "from-file", "seed": seed})
    except RegistryError as exc:
        raise _fail(exc) from exc
    click.echo(json.dumps({"version": version, "decision": decision.action, "reasons": list(decision.reasons),
                           "hr@10": report["hr@10"], "ndcg@10": report["ndcg@10"],
                           "champion": registry.champion_version(), "seconds": round(time.time() - started, 1)},
                          indent=2))


@click.command()
@click.argument("version", type=int)
def promote(version: int) -> None:
    """Make VERSION the champion (after checking that its model loads) and announce it."""
    from registry.service import RegistryError

    logging.basicConfig(level=logging.WARNING)
    try:
        registry = build_registry(Settings())
        registry.promote(version)
    except RegistryError as exc:
        raise _fail(exc) from exc
    click.echo(f"{registry.model_name}: version {version} is now champion")


@click.command()
def rollback() -> None:
    """Move the champion back to the previous champion and announce it."""
    from registry.service import RegistryError

    logging.basicConfig(level=logging.WARNING)
    try:
        registry = build_registry(Settings())
        version = registry.rollback()
    except RegistryError as exc:
        raise _fail(exc) from exc
    click.echo(f"{registry.model_name}: rolled back, version {version} is champion again")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def models(as_json: bool) -> None:
    """List registered versions with their aliases, decisions and key metrics."""
    from registry.service import RegistryError

    try:
        registry = build_registry(Settings(), announce=False)
        rows = registry.list_versions()
    except RegistryError as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"{registry.model_name}: no versions registered yet")
        return
    header = f"{'version':>7}  {'aliases':<20} {'decision':<8} {'kind':<4} {'HR@10':>7} {'NDCG@10':>7} " \
             f"{'FGSM drop':>9} {'poison':>7}  created"
    click.echo(header)
    for r in rows:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"])) if r["created"] else "-"
        click.echo(f"{r['version']:>7}  {','.join(r['aliases']) or '-':<20} {r['decision'] or '-':<8} "
                   f"{r['kind'] or '-':<4} {_fmt(r['hr@10']):>7} {_fmt(r['ndcg@10']):>7} "
                   f"{_fmt(r['fgsm_drop']):>9} {_fmt(r['poisoning_lift']):>7}  {created}")
