"""The steps of registering one training round, each a small function over a `RegistryStore`.

In order (`ModelRegistry.register_round` runs them): save and verify the model file
(`model_files.save_checked`), `log_run`, register the version (`RegistryStore.register`),
`tag_challenger` (numbers, lineage, the challenger alias), `decide_round` (the gate against the
champion measured on the same set, its tags),
then the facade moves the aliases, announces and exports metrics. A step that fails stops the
round: nothing is registered before the model file loads and the run is logged. It must never
move the champion alias itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from registry import versions
from registry.aliases import CHALLENGER, CHAMPION
from registry.promotion import Decision, GateConfig, decide
from registry.store import RegistryStore
from registry.tracking import accuracy_history, epoch_series, log_round, round_params

__all__ = ["log_run", "tag_challenger", "tag_shadow", "decide_round"]

log = logging.getLogger(__name__)


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


def tag_challenger(
    store: RegistryStore,
    version: int,
    kind: str,
    run_id: str,
    numbers: Mapping[str, float],
    lineage: Mapping[str, Any],
) -> None:
    """Tag a new version (format, kind, run, the gate's numbers, lineage) and point `challenger` at it."""
    store.set_version_tags(version, versions.round_tags(kind, run_id, numbers))
    versions.write_lineage(store, version, lineage)
    store.set_alias(CHALLENGER, version)


def tag_shadow(
    store: RegistryStore,
    version: int,
    kind: str,
    run_id: str,
    numbers: Mapping[str, float],
    lineage: Mapping[str, Any],
    decision: Decision,
    now: float,
) -> None:
    """Tag a shadow model's version (promotion off): what `tag_challenger` writes, and why no gate ran."""
    store.set_version_tags(
        version, {**versions.round_tags(kind, run_id, numbers), **versions.decision_tags(decision, now)}
    )
    versions.write_lineage(store, version, lineage)


def decide_round(
    store: RegistryStore, version: int, report: Mapping[str, Any], gate: GateConfig, now: Callable[[], float]
) -> Decision:
    """Run the gate against the champion measured on the challenger's own set (`report["champion"]`); tag it.

    The champion's stored tags come from another round's users and are never compared: a report
    without the champion's numbers, or with those of another version than the champion now (a
    rollback or promotion during the round), holds.
    """
    champion = store.alias_version(CHAMPION)
    champion_report = report.get("champion") or None
    measured = champion_report.get("version") if champion_report else None
    if champion is None or (measured is not None and int(measured) != champion):
        champion_report = None
    decision = decide(report, champion_report, gate, champion_exists=champion is not None)
    store.set_version_tags(version, versions.decision_tags(decision, now(), champion))
    log.info("version %d of %s: %s (%s)", version, store.model_name, decision.action, "; ".join(decision.reasons))
    return decision
