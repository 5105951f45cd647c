"""The model registry of advrec: register training rounds, gate them, move the champion alias.

`ModelRegistry` is the one front door the trainer, the scorers and the commands call. It wires
the pieces for one registered model (the MLflow calls in `store`, `model_files`, `tracking`,
`versions`, `aliases`, the pure gate in `promotion`) and runs a round through the steps of `rounds`.
Versions are addressed by aliases (`champion`, `challenger`), never stages. It must never read
the environment (URIs and bounds arrive as arguments; `wiring.build_registry` turns Settings into
them) nor run Kafka clients: announcements go through the `notify` callable it is given.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from registry import aliases, rounds, versions
from registry.aliases import CHALLENGER, CHAMPION, SHADOW
from registry.announcements import announce, model_update
from registry.model_files import MODEL_FILE, ModelFiles, save_checked
from registry.promotion import Decision, GateConfig, gate_numbers
from registry.retries import bound_mlflow_http
from registry.store import RegistryStore
from registry.tracking import default_artifact_location, get_or_create_experiment
from training.stream.trainer import Verdict

__all__ = ["ModelRegistry"]

log = logging.getLogger(__name__)


class ModelRegistry:
    """Registered versions of one model in MLflow, with gated promotion and rollback by alias."""

    def __init__(
        self,
        tracking_uri: str,
        model_name: str = "advrec-recommender",
        gate_config: GateConfig = GateConfig(),
        *,
        experiment: str = "advrec",
        artifact_location: str | None = None,
        cache_dir: str | Path | None = None,
        retries: int = 5,
        backoff_s: float = 0.5,
        notify: Callable[[dict], None] | None = None,
        export_metrics: bool = False,
        promotion: bool = True,
    ) -> None:
        bound_mlflow_http()
        self.tracking_uri, self.model_name, self.gate_config = tracking_uri, model_name, gate_config
        self.experiment_name, self.retries, self.backoff_s, self.notify = experiment, retries, backoff_s, notify
        self.promotion = promotion
        if artifact_location is None:
            artifact_location = default_artifact_location(tracking_uri)
        self.artifact_location = artifact_location
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "advrec-model-cache"
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.store = RegistryStore(self.client, tracking_uri, model_name, retries, backoff_s)
        self.files = ModelFiles(self.store, self.cache_dir)
        self._experiment_id: str | None = None
        self.metrics = None
        if export_metrics:
            from registry.metrics import registry_metrics

            self.metrics = registry_metrics()
            self._refresh_champion_metrics()

    def experiment_id(self) -> str:
        """The id of the experiment that holds the rounds' runs, created on first use."""
        if self._experiment_id is None:
            self._experiment_id = self.store.retry(
                lambda: get_or_create_experiment(self.client, self.experiment_name, self.artifact_location),
                "creating the experiment",
            )
        return self._experiment_id

    # ---- a training round, step by step ------------------------------------------------------
    def register_round(
        self,
        model: Any,
        report: Mapping[str, Any],
        lineage: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        epoch_metrics: Mapping[str, list[float]] | None = None,
    ) -> tuple[int, Decision]:
        """Log a round, run the gate, register the version with its decision, then move the aliases.

        The version is created with every tag (numbers, lineage, decision) in one MLflow call, so
        a round killed at any moment leaves no version or a whole, decided one. A promoted version
        becomes `champion`; any other holds `challenger`. With promotion off (a shadow model) no
        gate runs, and the version is pointed at by `shadow` only: no alias a champion scorer
        follows ever moves.
        """
        self.store.use()
        with tempfile.TemporaryDirectory(prefix="advrec-round-", ignore_cleanup_errors=True) as scratch:
            file = Path(scratch) / MODEL_FILE
            loaded = save_checked(model, file)  # CorruptModelError: nothing is logged or registered
            run_id, model_uri = rounds.log_run(
                self.store, self.experiment_id, model, loaded, file, report, lineage, params, epoch_metrics
            )
        numbers = gate_numbers(report, self.gate_config.fgsm_eps)
        if self.promotion:
            decision, champion = rounds.decide_round(self.store, report, self.gate_config)
        else:
            decision, champion = Decision("shadow", ("promotion off: registered, never promoted",), numbers), None
        tags = versions.new_version_tags(
            loaded.kind, loaded.save_format, run_id, numbers, lineage, decision, time.time(), champion
        )
        version = self.store.register(model_uri, tags)
        log.info("version %d of %s: %s (%s)", version, self.model_name, decision.action, "; ".join(decision.reasons))
        if not self.promotion:
            self.store.set_alias(SHADOW, version)
            return version, decision
        if decision.promoted:
            self._move_champion(version, "promote")  # announces the new champion
            self.store.delete_alias(CHALLENGER)
        else:
            self.store.set_alias(CHALLENGER, version)
        if self.metrics is not None:
            self.metrics.record_round(decision, numbers, report.get("champion"))
        return version, decision

    def on_round(self, model: Any, report: dict, lineage: dict) -> Verdict:
        """The trainer's per-round callback: `register_round` (the report's params, its test users as
        evaluation users); the trainer continues from the version only if it was promoted."""
        report = {**report, "eval_users": report.get("eval_users", report.get("test_users"))}
        version, decision = self.register_round(model, report, lineage, params=report.get("params"))
        return Verdict(decision.action, version, decision.reasons)

    # ---- versions and model files ------------------------------------------------------------
    def write_lineage(self, version: int, lineage: Mapping[str, Any]) -> None:
        """Tag a version with what it was trained on: `lineage.<key>` = JSON (see `versions.lineage_tags`)."""
        versions.write_lineage(self.store, version, lineage)

    def version_tags(self, version: int) -> dict[str, str]:
        """All tags of a registered version (decision, numbers, lineage)."""
        return self.store.version_tags(version)

    def list_versions(self) -> list[dict[str, Any]]:
        """Every version, newest first: version, aliases, decision, key metrics, creation time."""
        return versions.list_versions(self.store)

    def model_file(self, version: int) -> Path:
        """Local path of a version's advrec model file (downloaded once into the cache)."""
        return self.files.path(version)

    def load_version(self, version: int, device: str = "cpu"):
        """The version's recommender, fully loaded; CorruptModelError if it cannot be."""
        return self.files.load(version, device)

    # ---- the champion ------------------------------------------------------------------------
    def _move_champion(self, version: int, action: str) -> None:
        """Point `champion` at a version, then export and announce the move."""
        now = time.time()
        aliases.move_champion(self.store, version, action, now)
        if self.metrics is not None:
            self.metrics.set_champion(version, now)
        announce(self.notify, model_update(self.model_name, version, CHAMPION, action, time.time()))

    def _refresh_champion_metrics(self) -> None:
        version = self.store.alias_version(CHAMPION)
        if version is None:
            self.metrics.set_champion(None, None)
            return
        tags = self.store.version_tags(version)
        self.metrics.set_champion(version, versions.tag_float(tags, "champion_since") or time.time())

    def promote(self, version: int) -> None:
        """Make a version the champion by hand, after checking that its model loads."""
        version = int(version)
        self.store.version_tags(version)  # RegistryError if it does not exist
        self.load_version(version)  # CorruptModelError: refuse it
        self.store.set_version_tags(version, versions.manual_promotion_tags(time.time()))
        if self.store.alias_version(CHALLENGER) == version:
            self.store.delete_alias(CHALLENGER)
        self._move_champion(version, "promote")

    def rollback(self) -> int:
        """Move `champion` back to the previous champion; returns that version."""
        previous = aliases.roll_back(self.store, check=self.load_version)
        self._move_champion(previous, "rollback")
        return previous

    def champion(self) -> tuple[int, Path] | None:
        """(version, local model file) of the champion, or None while there is none."""
        version = self.store.alias_version(CHAMPION)
        if version is None:
            return None
        return version, self.model_file(version)

    def champion_version(self) -> int | None:
        """The version that holds the champion alias, or None."""
        return self.store.alias_version(CHAMPION)

    def alias_version(self, alias: str) -> int | None:
        """The version that holds `alias` (`champion`, or `shadow` of a shadow model), or None."""
        return self.store.alias_version(alias)
