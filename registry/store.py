"""One registered model in MLflow, call by call: each call retried, "not found" answered plainly.

`RegistryStore` is the only place (besides `tracking.log_round`) that talks to the MLflow client:
aliases, version tags, registered-model tags, registration, listing, downloads. It decides
nothing: what to tag, which alias to move and when belong to `versions`, `aliases` and the
`ModelRegistry` facade. It must never read the environment: its URIs arrive as arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from registry.errors import RegistryError
from registry.retries import with_retries

__all__ = ["RegistryStore", "TAG_VALUE_LIMIT"]

T = TypeVar("T")
TAG_VALUE_LIMIT = 5_000  # MLflow's cap on a tag value
_ABSENT_ALIAS = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


class RegistryStore:
    """The MLflow calls on one registered model, each wrapped in bounded retries."""

    def __init__(
        self, client: MlflowClient, tracking_uri: str, model_name: str, retries: int = 5, backoff_s: float = 0.5
    ) -> None:
        self.client, self.tracking_uri, self.model_name = client, tracking_uri, model_name
        self.retries, self.backoff_s = retries, backoff_s

    def retry(self, fn: Callable[[], T], what: str) -> T:
        """fn() with this store's retries; RegistryUnavailable when MLflow stays unreachable."""
        return with_retries(fn, what, self.retries, self.backoff_s)

    def use(self) -> None:
        """Point MLflow's fluent API (runs, registration, downloads) at this store's URI."""
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    # ---- aliases -------------------------------------------------------------------------------
    def alias_version(self, alias: str) -> int | None:
        """The version an alias points at, or None when the alias (or the model) does not exist."""

        def get() -> int | None:
            try:
                return int(self.client.get_model_version_by_alias(self.model_name, alias).version)
            except MlflowException as exc:
                if exc.error_code in _ABSENT_ALIAS:
                    return None
                raise

        return self.retry(get, f"reading alias {alias}")

    def set_alias(self, alias: str, version: int) -> None:
        """Point an alias at a version."""
        self.retry(
            lambda: self.client.set_registered_model_alias(self.model_name, alias, str(version)),
            f"setting the {alias} alias",
        )

    def delete_alias(self, alias: str) -> None:
        """Remove an alias; nothing happens if it does not exist."""

        def delete() -> None:
            try:
                self.client.delete_registered_model_alias(self.model_name, alias)
            except MlflowException as exc:
                if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    raise

        self.retry(delete, f"deleting alias {alias}")

    def aliases(self) -> dict[str, list[str]]:
        """Aliases held by each version, keyed by the version as text (empty without the model)."""

        def get() -> dict[str, list[str]]:
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

        return self.retry(get, "reading aliases")

    # ---- tags ----------------------------------------------------------------------------------
    def version_tags(self, version: int) -> dict[str, str]:
        """All tags of a version; RegistryError if the version does not exist."""

        def get() -> dict[str, str]:
            try:
                return dict(self.client.get_model_version(self.model_name, str(version)).tags)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    raise RegistryError(f"{self.model_name} has no version {version}") from exc
                raise

        return self.retry(get, f"reading version {version}")

    def set_version_tags(self, version: int, tags: Mapping[str, Any]) -> None:
        """Set tags on a version, one call each, every value cut at MLflow's tag limit."""
        for key, value in tags.items():
            self.retry(
                lambda k=key, v=value: self.client.set_model_version_tag(
                    self.model_name, str(version), k, str(v)[:TAG_VALUE_LIMIT]
                ),
                f"tagging version {version}",
            )

    def model_tags(self) -> dict[str, str]:
        """Tags of the registered model itself (empty while it does not exist)."""

        def get() -> dict[str, str]:
            try:
                return dict(self.client.get_registered_model(self.model_name).tags)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return {}
                raise

        return self.retry(get, "reading the registered model")

    def set_model_tag(self, key: str, value: str, what: str) -> None:
        """Set one tag of the registered model (`what` names the operation in retry messages)."""
        self.retry(lambda: self.client.set_registered_model_tag(self.model_name, key, value), what)

    # ---- versions ------------------------------------------------------------------------------
    def register(self, model_uri: str, tags: Mapping[str, Any] | None = None) -> int:
        """Register a logged model as the next version, created with `tags` (values cut at MLflow's
        tag limit) in the same call: the version never exists without them. Returns its number."""
        self.use()
        cut = {key: str(value)[:TAG_VALUE_LIMIT] for key, value in (tags or {}).items()}
        return int(
            self.retry(
                lambda: mlflow.register_model(model_uri, self.model_name, await_registration_for=60, tags=cut).version,
                "registering the model version",
            )
        )

    def versions(self) -> list[Any]:
        """Every version's MLflow record (empty while the model does not exist)."""

        def search() -> list:
            try:
                return list(self.client.search_model_versions(f"name='{self.model_name}'"))
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return []
                raise

        return self.retry(search, "listing versions")

    def download(self, version: int, destination: Path) -> None:
        """Download a version's `artifacts/` (the advrec model file) into `destination/artifacts/`.

        Not the whole pyfunc directory: its `code/` copy of the packages is ~50 files, and a
        scorer swapping models spent ~60 ms of CPU (holding the GIL) on their paths alone.
        """
        self.use()
        self.retry(
            lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{self.model_name}/{version}/artifacts", dst_path=str(destination)
            ),
            f"downloading version {version}",
        )
