"""Every `advrec COMMAND --option` that README.md shows exists: the README and `--help` agree."""

from __future__ import annotations

import re

import click
import pytest

from streams.cli import COMMANDS, main
from tests.paths import REPO

README = (REPO / "README.md").read_text()


def _snippets(text: str) -> list[str]:
    """Inline code spans and the lines of fenced code blocks."""
    fenced = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    rest = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    return [line for block in fenced for line in block.splitlines()] + re.findall(r"`([^`\n]+)`", rest)


def documented() -> list[tuple[str, str | None]]:
    """(command, option or None) for every `advrec COMMAND [--option ...]` in README.md."""
    found = []
    for snippet in _snippets(README):
        parts = re.split(r"\badvrec\s+(?=[a-z])", snippet)
        for part in parts[1:]:
            command = re.match(r"[a-z][a-z-]*", part).group(0)
            found.append((command, None))
            found += [(command, option) for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", part)]
    return sorted(set(found), key=lambda pair: (pair[0], pair[1] or ""))


def test_the_readme_shows_commands_and_options():
    pairs = documented()
    assert ("demo", None) in pairs and ("train", "--idle-timeout") in pairs and len(pairs) > 20


@pytest.mark.parametrize(("command", "option"), documented())
def test_each_documented_command_and_option_exists(command, option):
    assert command in COMMANDS, f"README shows `advrec {command}`, which is not a command"
    if option is None:
        return
    cmd = main.get_command(click.Context(main), command)
    options = {"--help"} | {name for param in cmd.params for name in (*param.opts, *param.secondary_opts)}
    assert option in options, f"README shows `advrec {command} {option}`, not in `advrec {command} --help`"
