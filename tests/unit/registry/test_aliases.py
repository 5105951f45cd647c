"""Champion moves and the champion history: the pure bookkeeping, then moves and rollbacks in memory."""

from __future__ import annotations

import json

import pytest

from registry.aliases import (
    CHAMPION,
    HISTORY_TAG,
    KEEP_HISTORY,
    format_history,
    history_after_move,
    history_before_rollback,
    move_champion,
    parse_history,
    read_history,
    roll_back,
)
from registry.errors import RegistryError
from registry.testing import MemoryStore


@pytest.mark.parametrize(
    "text, history",
    [("[1, 3, 4]", [1, 3, 4]), ('["2", 5]', [2, 5]), ("[]", []), ("not json", []), ("{}", []), ("[null]", [])],
)
def test_history_tag_parsing(text, history):
    assert parse_history(text) == history


def test_history_keeps_the_newest_entries():
    assert format_history([1, 2]) == "[1, 2]"
    assert json.loads(format_history(list(range(1, 61)))) == list(range(61 - KEEP_HISTORY, 61))


@pytest.mark.parametrize(
    "history, version, action, after",
    [
        ([], 1, "promote", [1]),
        ([1, 3], 4, "promote", [1, 3, 4]),
        ([1, 3], 3, "promote", [1, 3]),  # promoting the champion again adds nothing
        ([1, 3, 4], 3, "rollback", [1, 3]),
        ([1, 3, 4], 1, "rollback", [1]),
        ([1, 3], 7, "rollback", []),  # unknown target: the history is unwound completely
    ],
)
def test_history_after_a_move(history, version, action, after):
    assert history_after_move(history, version, action) == after


@pytest.mark.parametrize(
    "history, current, before",
    [([1, 3, 4], 4, [1, 3]), ([1, 3, 4], 2, [1, 3, 4]), ([1, 3], None, [1, 3]), ([4], 4, []), ([], 4, [])],
)
def test_history_before_a_rollback(history, current, before):
    assert history_before_rollback(history, current) == before


def _store(n_versions: int) -> MemoryStore:
    store = MemoryStore("advrec-test")
    for _ in range(n_versions):
        store.register("models:/m")
    return store


def test_moves_set_the_alias_the_history_and_the_champion_time():
    store = _store(3)
    move_champion(store, 1, "promote", 100.0)
    move_champion(store, 3, "promote", 200.0)
    assert store.alias_version(CHAMPION) == 3 and read_history(store) == [1, 3]
    assert store.model_tags()[HISTORY_TAG] == "[1, 3]"
    assert store.version_tags(3)["champion_since"] == "200.000"


def test_rollback_checks_the_previous_champion_then_tags_the_current_one():
    store, checked = _store(3), []
    move_champion(store, 1, "promote", 100.0)
    move_champion(store, 3, "promote", 200.0)
    previous = roll_back(store, check=checked.append, clock=lambda: 300.0)
    assert previous == 1 and checked == [1]
    assert store.version_tags(3)["rolled_back_at"] == "300.000" and read_history(store) == [1]
    move_champion(store, previous, "rollback", 301.0)  # the facade completes the move
    assert store.alias_version(CHAMPION) == 1 and read_history(store) == [1]
    with pytest.raises(RegistryError, match="advrec-test has no previous champion to roll back to"):
        roll_back(store, check=checked.append)


def test_a_rollback_to_a_version_that_does_not_load_changes_nothing():
    store = _store(2)
    move_champion(store, 1, "promote", 100.0)
    move_champion(store, 2, "promote", 200.0)

    def refuse(version: int) -> None:
        raise RegistryError(f"version {version} cannot be loaded")

    with pytest.raises(RegistryError, match="version 1 cannot be loaded"):
        roll_back(store, check=refuse)
    assert store.alias_version(CHAMPION) == 2 and read_history(store) == [1, 2]
    assert "rolled_back_at" not in store.version_tags(2)
