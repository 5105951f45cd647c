"""Advrec model files of registered versions: saved and verified before registration, cached after.

A round's model is written to a file and loaded back before anything is logged (what cannot be
served is never registered). A registered version's files are downloaded once into a local cache
(atomically: a staging directory renamed into place, with a `.complete` marker). It must never
register, tag or move aliases.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from registry.errors import CorruptModelError
from registry.store import RegistryStore

__all__ = ["MODEL_FILE", "save_checked", "find_model_file", "ModelFiles"]

MODEL_FILE = "advrec-model.pt"


def save_checked(model: Any, file: Path) -> Any:
    """Save a model (or copy a saved model file) to `file` and return it loaded back from there.

    CorruptModelError if the file does not load: it must not be registered.
    """
    if isinstance(model, (str, Path)):
        shutil.copyfile(model, file)
    else:
        model.save(file)
    from training.models import load_recommender

    try:  # refuse to register what cannot be served
        return load_recommender(file, device="cpu")
    except Exception as exc:  # noqa: BLE001 - whatever torch raises, the file is not a model
        raise CorruptModelError(f"not a loadable advrec model: {exc}") from exc


def find_model_file(directory: Path) -> Path | None:
    """The advrec model file among a downloaded pyfunc's artifacts, or None."""
    found = [p for p in directory.rglob("*.pt") if p.parent.name == "artifacts"]
    return found[0] if found else None


class ModelFiles:
    """The local cache of registered versions' model files: `<cache_dir>/<model name>/<version>/`."""

    def __init__(self, store: RegistryStore, cache_dir: Path) -> None:
        self.store, self.cache_dir = store, cache_dir

    def path(self, version: int) -> Path:
        """Local path of a version's advrec model file (downloaded once into the cache)."""
        name = self.store.model_name
        target = self.cache_dir / name / str(version)
        if not (target / ".complete").exists():
            (self.cache_dir / name).mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f"v{version}-", dir=self.cache_dir / name))
            try:
                self.store.download(version, staging)
                (staging / ".complete").write_text("ok")
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
            except MlflowException as exc:
                raise CorruptModelError(f"version {version} of {name} has no downloadable model: {exc}") from exc
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        found = find_model_file(target)
        if found is None:
            raise CorruptModelError(
                f"version {version} of {name} is not an advrec model: no model file among its artifacts ({target})"
            )
        return found

    def load(self, version: int, device: str = "cpu") -> Any:
        """The version's recommender, fully loaded; CorruptModelError if it cannot be."""
        from training.models import load_recommender

        path = self.path(version)
        try:
            return load_recommender(path, device=device)
        except Exception as exc:  # noqa: BLE001 - any failure to load means: do not serve it
            raise CorruptModelError(
                f"version {version} of {self.store.model_name} cannot be loaded "
                f"(corrupt or incompatible model file {path.name}): {exc}"
            ) from exc
