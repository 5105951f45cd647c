"""The steps of registering one training round, each a small function over a `RegistryStore`.

In order (`ModelRegistry.register_round` runs them): save and verify the model file
(`model_files.save_checked`), `log_run`, `decide_round` (the gate against the champion measured
on the same set), then the version is created with all its tags in one call
(`versions.new_version_tags`, `RegistryStore.register`), so that a round killed at any moment
leaves either no version or a whole one, decided; only then the facade moves the aliases,
announces and exports metrics. A step that fails stops the round: nothing is registered before
the model file loads and the run is logged. It must never move an alias itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from registry import versions
from registry.aliases import CHAMPION
from registry.promotion import Decision, GateConfig, decide
from registry.store import RegistryStore
from registry.tracking import accuracy_history, epoch_series, log_round, round_params

__all__ = ["log_run", "decide_round"]


def log_run(
    store: RegistryStore,
    experiment_id: Callable[[], str],
    model: Any,
    loaded: Any,
    model_file: Path,
    report: Mapping[str, Any],
    lineage: Mapping[str, Any],
    params: Mapping[str, Any] | None,
    epoch_metrics: Mapping[str, list[float]] | None,
) -> tuple[str, str]:
    """Log the round's run (params, metrics, plots, pyfunc model); returns (run_id, model_uri)."""
    all_params = round_params(loaded, params)
    series = epoch_series(model) if epoch_metrics is None else epoch_metrics
    history = accuracy_history(versions.list_versions(store))
    return store.retry(
        lambda: log_round(experiment_id(), model_file, report, all_params, lineage, series, history, model_file.parent),
        "logging the round",
    )


def decide_round(store: RegistryStore, report: Mapping[str, Any], gate: GateConfig) -> tuple[Decision, int | None]:
    """(decision, champion): the gate against the champion measured on the challenger's own set.

    The champion's numbers come from `report["champion"]`; its stored tags come from another
    round's users and are never compared: a report without the champion's numbers, or with those
    of another version than the champion now (a rollback or promotion during the round), holds.
    It tags nothing: the decision is written with the version when it is created.
    """
    champion = store.alias_version(CHAMPION)
    champion_report = report.get("champion") or None
    measured = champion_report.get("version") if champion_report else None
    if champion is None or (measured is not None and int(measured) != champion):
        champion_report = None
    return decide(report, champion_report, gate, champion_exists=champion is not None), champion
