"""The model registry of advrec: register training rounds, gate them, move the champion alias.

`ModelRegistry` is the adapter between the pure parts (models in `training/`, the gate in
`registry.promotion`) and an MLflow tracking server or sqlite store. Versions are addressed by
aliases (`champion`, `challenger`), never stages. Every decision is written on its version as
tags; the champion's history (for `rollback`) is a tag of the registered model. Every MLflow call
is retried with bounded exponential backoff, then fails with `RegistryUnavailable`. It must never
run Kafka clients itself: announcements go through the `notify` callable it is given.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from registry.promotion import Decision, GateConfig, decide, gate_numbers
from registry.tracking import log_round

__all__ = [
    "ModelRegistry",
    "RegistryError",
    "RegistryUnavailable",
    "CorruptModelError",
    "with_retries",
    "CHAMPION",
    "CHALLENGER",
    "MODEL_FILE",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_FILE = "advrec-model.pt"
HISTORY_TAG = "champion_history"
FORMAT_TAG = "advrec_format"
_KEEP_HISTORY = 50
_PERMANENT = {
    "RESOURCE_DOES_NOT_EXIST",
    "INVALID_PARAMETER_VALUE",
    "RESOURCE_ALREADY_EXISTS",
    "BAD_REQUEST",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "INVALID_STATE",
    "FEATURE_DISABLED",
}


LINEAGE_TAG_LIMIT = 4_500


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (no previous champion, unknown version…)."""


class RegistryUnavailable(RegistryError):
    """MLflow did not answer after every retry."""


class CorruptModelError(RegistryError):
    """A registered version whose model cannot be loaded (corrupt, or not an advrec model)."""


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, MlflowException):
        return exc.error_code not in _PERMANENT
    return isinstance(exc, (OSError, ConnectionError)) or type(exc).__module__.startswith(
        ("requests", "urllib3", "sqlalchemy")
    )


def with_retries(
    fn: Callable[[], T],
    what: str,
    attempts: int = 5,
    backoff_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call fn; on a transient error retry after backoff_s, 2·backoff_s, …; RegistryUnavailable at the end."""
    waited = 0.0
    for attempt in range(1, max(1, attempts) + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below
            if not _transient(exc):
                raise
            if attempt >= attempts:
                raise RegistryUnavailable(
                    f"MLflow unreachable while {what}: gave up after {attempt} attempts "
                    f"and {waited:.1f}s of backoff; last error: {exc}"
                ) from exc
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning(
                "MLflow error while %s (attempt %d/%d), retrying in %.1fs: %s", what, attempt, attempts, delay, exc
            )
            sleep(delay)
            waited += delay
    raise AssertionError("unreachable")


def _tag_number(value: Any) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.6g}"


def _float(tags: Mapping[str, str], key: str) -> float | None:
    try:
        value = float(tags[key])
    except (KeyError, ValueError):
        return None
    return None if math.isnan(value) else value


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
    ) -> None:
        # MLflow's own HTTP retries would wait minutes on a dead server; ours are bounded instead.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in logs
        self.tracking_uri, self.model_name, self.gate_config = tracking_uri, model_name, gate_config
        self.experiment_name, self.retries, self.backoff_s, self.notify = experiment, retries, backoff_s, notify
        if artifact_location is None and tracking_uri.startswith("sqlite:///"):
            artifact_location = (Path(tracking_uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri()
        self.artifact_location = artifact_location
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "advrec-model-cache"
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._experiment_id: str | None = None
        self.metrics = None
        if export_metrics:
            from registry.metrics import registry_metrics

            self.metrics = registry_metrics()
            self._refresh_champion_metrics()

    # ---- plumbing ----------------------------------------------------------------------------
    def _retry(self, fn: Callable[[], T], what: str) -> T:
        return with_retries(fn, what, self.retries, self.backoff_s)

    def _use(self) -> None:
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def experiment_id(self) -> str:
        """The id of the experiment that holds the rounds' runs, created on first use."""
        if self._experiment_id is None:

            def get_or_create() -> str:
                found = self.client.get_experiment_by_name(self.experiment_name)
                if found is not None:
                    return found.experiment_id
                return self.client.create_experiment(self.experiment_name, artifact_location=self.artifact_location)

            self._experiment_id = self._retry(get_or_create, "creating the experiment")
        return self._experiment_id

    def _alias_version(self, alias: str) -> int | None:
        def get() -> int | None:
            try:
                return int(self.client.get_model_version_by_alias(self.model_name, alias).version)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                    return None
                raise

        return self._retry(get, f"reading alias {alias}")

    def _version_tags(self, version: int) -> dict[str, str]:
        def get() -> dict[str, str]:
            try:
                return dict(self.client.get_model_version(self.model_name, str(version)).tags)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    raise RegistryError(f"{self.model_name} has no version {version}") from exc
                raise

        return self._retry(get, f"reading version {version}")

    def _set_tags(self, version: int, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._retry(
                lambda k=key, v=value: self.client.set_model_version_tag(
                    self.model_name, str(version), k, str(v)[:5000]
                ),
                f"tagging version {version}",
            )

    def _model_tags(self) -> dict[str, str]:
        def get() -> dict[str, str]:
            try:
                return dict(self.client.get_registered_model(self.model_name).tags)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return {}
                raise

        return self._retry(get, "reading the registered model")

    def _history(self) -> list[int]:
        try:
            return [int(v) for v in json.loads(self._model_tags().get(HISTORY_TAG, "[]"))]
        except (ValueError, TypeError):
            return []

    def _write_history(self, history: list[int]) -> None:
        self._retry(
            lambda: self.client.set_registered_model_tag(
                self.model_name, HISTORY_TAG, json.dumps(history[-_KEEP_HISTORY:])
            ),
            "writing the champion history",
        )

    def _delete_alias(self, alias: str) -> None:
        def delete() -> None:
            try:
                self.client.delete_registered_model_alias(self.model_name, alias)
            except MlflowException as exc:
                if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    raise

        self._retry(delete, f"deleting alias {alias}")

    def _announce(self, version: int, alias: str, action: str) -> None:
        if self.notify is None:
            return
        update = {
            "model_name": self.model_name,
            "version": version,
            "alias": alias,
            "action": action,
            "ts": time.time(),
        }
        try:
            self.notify(update)
        except Exception as exc:  # noqa: BLE001 - best effort: the scorers also poll the alias
            log.warning("could not announce %s of version %d: %s", action, version, exc)

    def _refresh_champion_metrics(self) -> None:
        if self.metrics is None:
            return
        version = self._alias_version(CHAMPION)
        if version is None:
            self.metrics.set_champion(None, None)
            return
        tags = self._version_tags(version)
        self.metrics.set_champion(version, _float(tags, "champion_since") or time.time())

    # ---- model files -------------------------------------------------------------------------
    def model_file(self, version: int) -> Path:
        """Local path of a version's advrec model file (downloaded once into the cache)."""
        target = self.cache_dir / self.model_name / str(version)
        marker = target / ".complete"
        if not marker.exists():
            staging = Path(tempfile.mkdtemp(prefix=f"v{version}-", dir=self._mkcache()))
            try:
                self._use()
                self._retry(
                    lambda: mlflow.artifacts.download_artifacts(
                        artifact_uri=f"models:/{self.model_name}/{version}", dst_path=str(staging)
                    ),
                    f"downloading version {version}",
                )
                marker_tmp = staging / ".complete"
                marker_tmp.write_text("ok")
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
            except MlflowException as exc:
                raise CorruptModelError(
                    f"version {version} of {self.model_name} has no downloadable model: {exc}"
                ) from exc
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return self._find_model_file(target, version)

    def _mkcache(self) -> Path:
        (self.cache_dir / self.model_name).mkdir(parents=True, exist_ok=True)
        return self.cache_dir / self.model_name

    def _find_model_file(self, directory: Path, version: int) -> Path:
        found = [p for p in directory.rglob("*.pt") if p.parent.name == "artifacts"]
        if not found:
            raise CorruptModelError(
                f"version {version} of {self.model_name} is not an advrec model: "
                f"no model file among its artifacts ({directory})"
            )
        return found[0]

    def load_version(self, version: int, device: str = "cpu"):
        """The version's recommender, fully loaded; CorruptModelError if it cannot be."""
        from training.models import load_recommender

        path = self.model_file(version)
        try:
            return load_recommender(path, device=device)
        except Exception as exc:  # noqa: BLE001 - any failure to load means: do not serve it
            raise CorruptModelError(
                f"version {version} of {self.model_name} cannot be loaded "
                f"(corrupt or incompatible model file {path.name}): {exc}"
            ) from exc

    # ---- rounds ------------------------------------------------------------------------------
    def register_round(
        self,
        model: Any,
        report: Mapping[str, Any],
        lineage: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        epoch_metrics: Mapping[str, list[float]] | None = None,
    ) -> tuple[int, Decision]:
        """Log a round, register it as `challenger`, run the gate and promote if it passes."""
        from dataclasses import asdict, is_dataclass

        self._use()
        work = Path(tempfile.mkdtemp(prefix="advrec-round-"))
        try:
            file = work / MODEL_FILE
            if isinstance(model, (str, Path)):
                shutil.copyfile(model, file)
            else:
                model.save(file)
            from training.models import load_recommender

            try:  # refuse to register what cannot be served
                loaded = load_recommender(file, device="cpu")
            except Exception as exc:  # noqa: BLE001 - whatever torch raises, the file is not a model
                raise CorruptModelError(f"not a loadable advrec model: {exc}") from exc
            all_params = {
                "kind": loaded.kind,
                "n_users": len(loaded.users),
                "n_items": len(loaded.items),
                "rounds": loaded.rounds,
                **(asdict(loaded.config) if is_dataclass(loaded.config) else {}),
                **(params or {}),
            }
            if epoch_metrics is None:
                epoch_metrics = {
                    "loss": list(getattr(model, "losses", []) or []),
                    "epoch_seconds": list(getattr(model, "epoch_seconds", []) or []),
                }
            history = [
                {"version": r["version"], "hr@10": r["hr@10"], "ndcg@10": r["ndcg@10"]}
                for r in reversed(self.list_versions()[:20])
            ]
            run_id, model_uri = self._retry(
                lambda: log_round(
                    self.experiment_id(), file, report, all_params, lineage, epoch_metrics, history, work
                ),
                "logging the round",
            )
            version = int(
                self._retry(
                    lambda: mlflow.register_model(model_uri, self.model_name, await_registration_for=60).version,
                    "registering the model version",
                )
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

        numbers = gate_numbers(report, self.gate_config.fgsm_eps)
        self._set_tags(
            version,
            {
                FORMAT_TAG: "advrec.mf/1",
                "kind": loaded.kind,
                "run_id": run_id,
                **{k.replace("@", "_at_"): _tag_number(v) for k, v in numbers.items()},
            },
        )
        self.write_lineage(version, lineage)
        self._retry(
            lambda: self.client.set_registered_model_alias(self.model_name, CHALLENGER, str(version)),
            "setting the challenger alias",
        )

        champion = self._alias_version(CHAMPION)
        champion_report = report.get("champion")
        if champion is not None and not champion_report:
            tags = self._version_tags(champion)
            champion_report = {"hr@10": _float(tags, "hr_at_10"), "ndcg@10": _float(tags, "ndcg_at_10")}
        decision = decide(report, champion_report if champion is not None else None, self.gate_config)
        self._set_tags(
            version,
            {
                "decision": decision.action,
                "decision_reasons": " | ".join(decision.reasons),
                "decided_at": f"{time.time():.3f}",
                **{f"gate.{k.replace('@', '_at_')}": _tag_number(v) for k, v in decision.numbers.items()},
            },
        )
        log.info("version %d of %s: %s (%s)", version, self.model_name, decision.action, "; ".join(decision.reasons))
        if decision.promoted:
            self._move_champion(version, "promote")
            self._delete_alias(CHALLENGER)
        if self.metrics is not None:
            self.metrics.promotions.labels(decision.action).inc()
            if decision.promoted:
                self.metrics.set_accuracy(CHAMPION, numbers["hr@10"], numbers["ndcg@10"])
                self.metrics.set_accuracy(CHALLENGER, None, None)
            else:
                self.metrics.set_accuracy(CHALLENGER, numbers["hr@10"], numbers["ndcg@10"])
                if report.get("champion"):
                    old = gate_numbers(report["champion"])
                    self.metrics.set_accuracy(CHAMPION, old["hr@10"], old["ndcg@10"])
        return version, decision

    def on_round(self, model: Any, report: dict, lineage: dict) -> tuple[int, Decision]:
        """The trainer's per-round callback: `register_round` with the report's params, if any."""
        return self.register_round(model, report, lineage, params=report.get("params"))

    def write_lineage(self, version: int, lineage: Mapping[str, Any]) -> None:
        """Tag a version with what it was trained on: `lineage.<key>` = JSON (batch files, offsets, …).

        MLflow caps a tag value at 5,000 characters; a longer value (many batch announcements)
        is tagged by its size only, and the whole lineage stays in the run's lineage.json.
        """
        tags = {}
        for key, value in lineage.items():
            text = json.dumps(value, default=str, sort_keys=True)
            if len(text) > LINEAGE_TAG_LIMIT:
                count = len(value) if hasattr(value, "__len__") else None
                text = json.dumps({"truncated": True, "items": count, "see": "artifact lineage.json"})
            tags[f"lineage.{key}"] = text
        self._set_tags(version, tags)

    def version_tags(self, version: int) -> dict[str, str]:
        """All tags of a registered version (decision, numbers, lineage)."""
        return self._version_tags(version)

    # ---- aliases -----------------------------------------------------------------------------
    def _move_champion(self, version: int, action: str) -> None:
        now = time.time()
        self._retry(
            lambda: self.client.set_registered_model_alias(self.model_name, CHAMPION, str(version)),
            "setting the champion alias",
        )
        history = self._history()
        if action == "rollback":
            while history and history[-1] != version:
                history.pop()
        elif not history or history[-1] != version:
            history.append(version)
        self._write_history(history)
        self._set_tags(version, {"champion_since": f"{now:.3f}"})
        if self.metrics is not None:
            self.metrics.set_champion(version, now)
        self._announce(version, CHAMPION, action)

    def promote(self, version: int) -> None:
        """Make a version the champion by hand, after checking that its model loads."""
        version = int(version)
        self._version_tags(version)  # RegistryError if it does not exist
        self.load_version(version)  # CorruptModelError: refuse it
        self._set_tags(
            version, {"decision": "promote", "decision_reasons": "manual promotion", "decided_at": f"{time.time():.3f}"}
        )
        if self._alias_version(CHALLENGER) == version:
            self._delete_alias(CHALLENGER)
        self._move_champion(version, "promote")

    def rollback(self) -> int:
        """Move `champion` back to the previous champion; returns that version."""
        current = self._alias_version(CHAMPION)
        history = self._history()
        if current is not None and history and history[-1] == current:
            history = history[:-1]
        if not history:
            raise RegistryError(f"{self.model_name} has no previous champion to roll back to")
        previous = history[-1]
        self.load_version(previous)
        if current is not None:
            self._set_tags(current, {"rolled_back_at": f"{time.time():.3f}"})
        self._write_history(history)
        self._move_champion(previous, "rollback")
        return previous

    def champion(self) -> tuple[int, Path] | None:
        """(version, local model file) of the champion, or None while there is none."""
        version = self._alias_version(CHAMPION)
        if version is None:
            return None
        return version, self.model_file(version)

    def champion_version(self) -> int | None:
        """The version that holds the champion alias, or None."""
        return self._alias_version(CHAMPION)

    def list_versions(self) -> list[dict[str, Any]]:
        """Every version, newest first: version, aliases, decision, key metrics, creation time."""

        def search() -> list:
            try:
                return list(self.client.search_model_versions(f"name='{self.model_name}'"))
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return []
                raise

        def aliases() -> dict[str, list[str]]:
            try:
                held = self.client.get_registered_model(self.model_name).aliases or {}
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return {}
                raise
            by_version: dict[str, list[str]] = {}
            for alias, version in held.items():
                by_version.setdefault(str(version), []).append(alias)
            return by_version

        rows = []
        held = self._retry(aliases, "reading aliases")
        for mv in self._retry(search, "listing versions"):
            tags = dict(mv.tags)
            rows.append(
                {
                    "version": int(mv.version),
                    "aliases": sorted(held.get(str(mv.version), [])),
                    "decision": tags.get("decision", ""),
                    "kind": tags.get("kind", ""),
                    "hr@10": _float(tags, "hr_at_10"),
                    "ndcg@10": _float(tags, "ndcg_at_10"),
                    "fgsm_drop": _float(tags, "fgsm_ndcg_drop"),
                    "poisoning_lift": _float(tags, "poisoning_lift"),
                    "reasons": tags.get("decision_reasons", ""),
                    "created": mv.creation_timestamp / 1000.0 if mv.creation_timestamp else None,
                }
            )
        return sorted(rows, key=lambda r: -r["version"])
