"""The `advrec` command line: one group whose subcommands are loaded only when invoked.

Each subcommand is a composition root: it builds the Settings once and wires the process.
Lazy loading keeps `advrec --help` fast (no torch, faust or mlflow import) and lets each
package own its commands.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["main"]

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "broker": "streams.local.main:broker",
    "produce": "streams.local.main:produce",
    "demo": "streams.local.main:demo",
    "worker": "streams.worker.main:worker",
    "detector": "streams.worker.main:detector",
    "windows": "streams.worker.main:windows",
    "scorer": "streams.serving.main:scorer",
    "attack": "streams.fraud.main:attack",
    "eval-detection": "streams.fraud.main:eval_detection",
    "label": "streams.fraud.main:label",
    "eval-attack": "streams.adversary.main:eval_attack",
    "eval-model": "training.main:eval_model",
    "eval-cold-start": "training.main:eval_cold_start",
    "train": "training.main:train",
    "promote": "registry.main:promote",
    "rollback": "registry.main:rollback",
    "models": "registry.main:models",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context):
        from pydantic import ValidationError

        from streams.contract.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as exc:  # the user can fix it: say what, without a traceback
            raise click.ClickException(str(exc)) from None
        except ValidationError as exc:  # a setting out of its domain (the only pydantic model is Settings)
            raise click.ClickException(settings_problems(exc)) from None


def settings_problems(exc) -> str:
    """One line per rejected setting, named as it is set (`ADVREC_…`), with pydantic's reason."""
    lines = []
    for error in exc.errors():
        name = "ADVREC_" + "_".join(str(part) for part in error["loc"]).upper()
        lines.append(f"{name}={error.get('input')!r}: {error['msg']}")
    return "bad settings:\n" + "\n".join(lines)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """advrec: adversarially retrained recommendations on a Kafka stream."""


if __name__ == "__main__":  # pragma: no cover
    main()
