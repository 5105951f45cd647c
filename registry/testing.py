"""Test fakes of the registry: `MemoryStore`, an in-memory stand-in for `RegistryStore`.

It answers the same calls (aliases, version and model tags, registration, listing, downloads)
from dicts, so that `versions`, `aliases`, `rounds` and `model_files` are tested without MLflow.
It must never be used by a process: only tests build it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from registry.errors import RegistryError
from registry.store import TAG_VALUE_LIMIT

__all__ = ["MemoryStore"]

T = TypeVar("T")


class MemoryStore:
    """A registered model kept in memory, with `RegistryStore`'s methods (no retries needed)."""

    def __init__(self, model_name: str = "advrec-test", files: Mapping[str, bytes] | None = None) -> None:
        self.model_name = model_name
        self.alias_map: dict[str, int] = {}
        self.tags: dict[int, dict[str, str]] = {}
        self.model_tag_map: dict[str, str] = {}
        self.sources: dict[int, str] = {}
        self.files = dict(files or {})  # what a download writes: relative path → bytes
        self.downloads: list[int] = []

    def retry(self, fn: Callable[[], T], what: str) -> T:
        """fn(), once."""
        return fn()

    def use(self) -> None:
        """Nothing to point at."""

    def alias_version(self, alias: str) -> int | None:
        """The version an alias points at, or None."""
        return self.alias_map.get(alias)

    def set_alias(self, alias: str, version: int) -> None:
        """Point an alias at a version."""
        self.alias_map[alias] = int(version)

    def delete_alias(self, alias: str) -> None:
        """Remove an alias if it exists."""
        self.alias_map.pop(alias, None)

    def aliases(self) -> dict[str, list[str]]:
        """Aliases held by each version, keyed by the version as text."""
        by_version: dict[str, list[str]] = {}
        for alias, version in self.alias_map.items():
            by_version.setdefault(str(version), []).append(alias)
        return by_version

    def version_tags(self, version: int) -> dict[str, str]:
        """All tags of a version; RegistryError if it does not exist."""
        if int(version) not in self.tags:
            raise RegistryError(f"{self.model_name} has no version {version}")
        return dict(self.tags[int(version)])

    def set_version_tags(self, version: int, tags: Mapping[str, Any]) -> None:
        """Set tags on an existing version, values cut as MLflow cuts them."""
        self.version_tags(version)
        self.tags[int(version)].update({k: str(v)[:TAG_VALUE_LIMIT] for k, v in tags.items()})

    def model_tags(self) -> dict[str, str]:
        """Tags of the registered model."""
        return dict(self.model_tag_map)

    def set_model_tag(self, key: str, value: str, what: str) -> None:
        """Set one tag of the registered model."""
        self.model_tag_map[key] = value

    def register(self, model_uri: str, tags: Mapping[str, Any] | None = None) -> int:
        """Add the next version, from `model_uri`, with its tags."""
        version = len(self.tags) + 1
        self.tags[version], self.sources[version] = {}, model_uri
        self.set_version_tags(version, tags or {})
        return version

    def versions(self) -> list[Any]:
        """Every version as MLflow-like records (version text, tags, creation time in ms)."""
        return [
            SimpleNamespace(version=str(v), tags=dict(tags), creation_timestamp=1_700_000_000_000 + v * 1000)
            for v, tags in self.tags.items()
        ]

    def download(self, version: int, destination: Path) -> None:
        """Write the `files` under `artifacts/` into `destination`, as a download of the version would."""
        self.version_tags(version)
        self.downloads.append(int(version))
        for relative, content in self.files.items():
            if not relative.startswith("artifacts/"):
                continue
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            (destination / relative).write_bytes(content)
