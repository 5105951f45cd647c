"""Click commands of the learned attacker: `advrec eval-attack`.

A thin composition root: parse options, read the ratings, build the Settings (for MLflow) once,
call `streams.adversary.protocol.run`, log the game to MLflow, print one JSON object.
"""

from __future__ import annotations

import json
from dataclasses import replace

import click

__all__ = ["eval_attack"]


@click.command("eval-attack")
@click.option("--ratings", "ratings_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--size", type=float, default=0.05, show_default=True, help="Attackers / genuine users.")
@click.option("--filler", type=float, default=0.03, show_default=True, help="Filler items / all items.")
@click.option("--seed", type=int, default=1, show_default=True, help="Attack seed (and the generator's).")
@click.option("--steps", type=click.IntRange(min=0), default=400, show_default=True, help="Generator training steps.")
@click.option(
    "--rounds", type=click.IntRange(min=0), default=4, show_default=True, help="Rounds of the hardening game."
)
@click.option("--targets", "n_targets", type=click.IntRange(min=1), default=4, show_default=True, help="Target items.")
@click.option("--bpr-seeds", type=click.IntRange(min=1), default=2, show_default=True, help="BPR models per condition.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="BPR epochs (default: the project's).")
@click.option(
    "--details", "details_path", type=click.Path(dir_okay=False), default=None, help="Write every figure here."
)
@click.option("--template", is_flag=True, help="Also measure the untrained generator (AUSH's sampling) as a baseline.")
@click.option(
    "--oracle", is_flag=True, help="Also measure free-filler baselines: most popular filler, surrogate-chosen filler."
)
@click.option(
    "--popularity",
    type=float,
    default=0.0,
    show_default=True,
    help="The generator's starting bias toward a template's popular items (x log popularity); 0: AUSH's sampling.",
)
@click.option(
    "--surrogate",
    type=click.Choice(["bpr", "als"]),
    default="bpr",
    show_default=True,
    help="The generator's surrogate: BPR-shaped MF (the victim's family) or implicit ALS.",
)
@click.option("--no-mlflow", is_flag=True, help="Do not log the game to MLflow.")
def eval_attack(
    ratings_path,
    size,
    filler,
    seed,
    steps,
    rounds,
    n_targets,
    bpr_seeds,
    epochs,
    details_path,
    template,
    oracle,
    popularity,
    surrogate,
    no_mlflow,
):
    """Lift and detector recall of every attack kind incl. the learned one, and the hardened detector: one JSON."""
    from contextlib import nullcontext

    from streams.adversary.evaluation import EvalConfig
    from streams.adversary.game import GameConfig
    from streams.adversary.learner import GanConfig
    from streams.adversary.protocol import run
    from streams.adversary.surrogate import ALSConfig, BPRSurrogateConfig
    from streams.sources.datasets import read_ratings
    from training.models.mf import MFConfig

    if not 0 < size <= 1 or not 0 < filler < 1:
        raise click.BadParameter("--size must be in (0, 1], --filler in (0, 1)")
    bpr = MFConfig() if epochs is None else replace(MFConfig(), epochs=epochs)
    evaluation = EvalConfig(n_targets=n_targets, bpr_seeds=tuple(range(bpr_seeds)), bpr=bpr)
    params = {"size": size, "filler": filler, "seed": seed, "steps": steps, "rounds": rounds, "targets": n_targets}
    params.update(surrogate=surrogate, popularity=popularity)
    if no_mlflow:
        tracker = nullcontext()
    else:
        from streams.adversary.tracking import GameRun
        from streams.contract.settings import Settings

        tracker = GameRun(Settings().mlflow_uri, params)
    with tracker as game_run:
        summary, details = run(
            read_ratings(ratings_path),
            size,
            filler,
            seed,
            gan=replace(
                GanConfig(),
                steps=steps,
                popularity=popularity,
                surrogate=BPRSurrogateConfig() if surrogate == "bpr" else ALSConfig(),
            ),
            evaluation=evaluation,
            game=replace(GameConfig(), rounds=rounds),
            on_round=game_run.round if game_run else None,
            on_trained=game_run.training if game_run else None,
            template=template,
            oracle=oracle,
        )
        if game_run:
            game_run.summary({"summary": summary, **details})
            details["mlflow_run_id"] = game_run.run_id
    if details_path:
        with open(details_path, "w", encoding="utf-8") as fh:
            json.dump({"summary": summary, **details}, fh, indent=1, default=str)
    click.echo(json.dumps(summary))
