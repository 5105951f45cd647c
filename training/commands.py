"""CLI commands of the training side (composition roots): `advrec eval-model`."""
from __future__ import annotations

import json

import click

__all__ = ["eval_model"]


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
