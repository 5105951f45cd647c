"""Composition roots of the registry: `advrec promote`, `rollback`, `models`."""

from __future__ import annotations

import json
import logging
import time

import click

from registry.wiring import build_registry
from streams.contract.settings import Settings

__all__ = ["promote", "rollback", "models"]


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.command()
@click.argument("version", type=int)
def promote(version: int) -> None:
    """Make VERSION the champion (after checking that its model loads) and announce it."""
    from registry.errors import RegistryError

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
    from registry.errors import RegistryError

    logging.basicConfig(level=logging.WARNING)
    try:
        registry = build_registry(Settings())
        version = registry.rollback()
    except RegistryError as exc:
        raise _fail(exc) from exc
    click.echo(f"{registry.model_name}: rolled back, version {version} is champion again")


def _missing_sqlite_store(settings: Settings) -> str | None:
    """What to say instead of creating an empty sqlite store where the user expected versions (None: it exists)."""
    if settings.mlflow_tracking_uri:
        return None
    path = (settings.data_dir / "mlflow.db").resolve()
    if path.exists():
        return None
    text = f"no MLflow store at {settings.mlflow_uri} (set ADVREC_MLFLOW_TRACKING_URI to read another one)"
    demo = (settings.data_dir / "demo" / "state" / "mlflow.db").resolve()
    if demo.exists():
        text += f"; the demo's registry: ADVREC_MLFLOW_TRACKING_URI=sqlite:///{demo} advrec models"
    return text


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def models(as_json: bool) -> None:
    """List registered versions with their aliases, decisions and key metrics."""
    from registry.errors import RegistryError

    settings = Settings()
    missing = _missing_sqlite_store(settings)
    if missing is not None:
        click.echo(missing)
        return
    try:
        registry = build_registry(settings, announce=False)
        rows = registry.list_versions()
    except RegistryError as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"{registry.model_name}: no versions registered yet in {settings.mlflow_uri}")
        return
    header = (
        f"{'version':>7}  {'aliases':<20} {'decision':<8} {'kind':<4} {'HR@10':>7} {'NDCG@10':>7} "
        f"{'FGSM drop':>9} {'poison':>7}  created"
    )
    click.echo(header)
    for r in rows:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"])) if r["created"] else "-"
        click.echo(
            f"{r['version']:>7}  {','.join(r['aliases']) or '-':<20} {r['decision'] or '-':<8} "
            f"{r['kind'] or '-':<4} {_fmt(r['hr@10']):>7} {_fmt(r['ndcg@10']):>7} "
            f"{_fmt(r['fgsm_drop']):>9} {_fmt(r['poisoning_lift']):>7}  {created}"
        )
