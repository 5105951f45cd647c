"""The `champion` and `challenger` aliases, and the champion history that `rollback` walks back.

The history is a JSON list of versions in the registered model's `champion_history` tag, newest
last. Its bookkeeping (`parse_history`, `history_after_move`, `history_before_rollback`) is pure;
the moves go through a `RegistryStore`. It must never announce or export metrics (the
`ModelRegistry` facade does, after a move) nor load models itself (rollback is given a check).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from registry.errors import RegistryError
from registry.store import RegistryStore

__all__ = [
    "CHAMPION",
    "CHALLENGER",
    "SHADOW",
    "HISTORY_TAG",
    "KEEP_HISTORY",
    "parse_history",
    "format_history",
    "history_after_move",
    "history_before_rollback",
    "read_history",
    "write_history",
    "move_champion",
    "roll_back",
]

CHAMPION, CHALLENGER = "champion", "challenger"
SHADOW = "shadow"  # a shadow model's newest version (promotion off; MLflow reserves `latest`)
HISTORY_TAG = "champion_history"
KEEP_HISTORY = 50


def parse_history(text: str) -> list[int]:
    """The versions of a `champion_history` tag, oldest first; [] if the tag is not a list of numbers."""
    try:
        return [int(v) for v in json.loads(text)]
    except (ValueError, TypeError):
        return []


def format_history(history: list[int]) -> str:
    """The tag text of a history: its last `KEEP_HISTORY` versions as JSON."""
    return json.dumps(history[-KEEP_HISTORY:])


def history_after_move(history: list[int], version: int, action: str) -> list[int]:
    """The history once `version` holds the champion alias: appended on promote, unwound on rollback."""
    history = list(history)
    if action == "rollback":
        while history and history[-1] != version:
            history.pop()
    elif not history or history[-1] != version:
        history.append(version)
    return history


def history_before_rollback(history: list[int], current: int | None) -> list[int]:
    """The history without the current champion: its last entry (if any) is the rollback target."""
    if current is not None and history and history[-1] == current:
        return history[:-1]
    return list(history)


def read_history(store: RegistryStore) -> list[int]:
    """The champion history of the store's registered model."""
    return parse_history(store.model_tags().get(HISTORY_TAG, "[]"))


def write_history(store: RegistryStore, history: list[int]) -> None:
    """Replace the champion history of the store's registered model."""
    store.set_model_tag(HISTORY_TAG, format_history(history), "writing the champion history")


def move_champion(store: RegistryStore, version: int, action: str, now: float) -> None:
    """Point `champion` at a version, record it in the history, and tag when it became champion."""
    store.set_alias(CHAMPION, version)
    write_history(store, history_after_move(read_history(store), version, action))
    store.set_version_tags(version, {"champion_since": f"{now:.3f}"})


def roll_back(store: RegistryStore, check: Callable[[int], Any], clock: Callable[[], float] = time.time) -> int:
    """Prepare the rollback to the previous champion and return it; `move_champion` completes it.

    `check(version)` must raise if the previous champion cannot be served; RegistryError if
    there is no previous champion. The current champion is tagged `rolled_back_at`.
    """
    current = store.alias_version(CHAMPION)
    history = history_before_rollback(read_history(store), current)
    if not history:
        raise RegistryError(f"{store.model_name} has no previous champion to roll back to")
    previous = history[-1]
    check(previous)
    if current is not None:
        store.set_version_tags(current, {"rolled_back_at": f"{clock():.3f}"})
    write_history(store, history)
    return previous
