"""Model files: verified before registration, downloaded once into the cache, refused when corrupt."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from registry.errors import CorruptModelError
from registry.model_files import MODEL_FILE, ModelFiles, find_model_file, save_checked
from registry.testing import MemoryStore
from training.models import BPRRecommender


@pytest.fixture(scope="module")
def model() -> BPRRecommender:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(0, 10, 200).astype(str), "item": rng.integers(0, 20, 200).astype(str)})
    return BPRRecommender(dim=4, epochs=1, seed=0).fit(frame)


def test_a_model_is_saved_and_loaded_back_before_registration(model, tmp_path):
    loaded = save_checked(model, tmp_path / MODEL_FILE)
    assert loaded.kind == model.kind and len(loaded.users) == len(model.users)
    copied = save_checked(tmp_path / MODEL_FILE, tmp_path / "copy.pt")  # a saved file is copied, then checked
    assert copied.kind == model.kind


def test_a_file_that_does_not_load_is_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"definitely not a torch file")
    with pytest.raises(CorruptModelError, match="not a loadable advrec model"):
        save_checked(bad, tmp_path / MODEL_FILE)


def test_the_model_file_is_the_pt_file_among_the_artifacts(tmp_path):
    (tmp_path / "model" / "artifacts").mkdir(parents=True)
    (tmp_path / "model" / "code").mkdir()
    (tmp_path / "model" / "code" / "other.pt").write_bytes(b"x")
    assert find_model_file(tmp_path) is None
    (tmp_path / "model" / "artifacts" / MODEL_FILE).write_bytes(b"x")
    assert find_model_file(tmp_path) == tmp_path / "model" / "artifacts" / MODEL_FILE


def test_a_version_is_downloaded_once_then_served_from_the_cache(model, tmp_path):
    model.save(tmp_path / MODEL_FILE)
    store = MemoryStore("cached", files={f"artifacts/{MODEL_FILE}": (tmp_path / MODEL_FILE).read_bytes()})
    version = store.register("models:/m")
    files = ModelFiles(store, tmp_path / "cache")
    path = files.path(version)
    assert path == tmp_path / "cache" / "cached" / "1" / "artifacts" / MODEL_FILE
    assert (tmp_path / "cache" / "cached" / "1" / ".complete").read_text() == "ok"
    assert files.path(version) == path and files.load(version).kind == model.kind
    assert store.downloads == [1]
    assert sorted(p.name for p in (tmp_path / "cache" / "cached").iterdir()) == ["1"]  # no staging left behind


def test_versions_without_a_loadable_model_are_corrupt(tmp_path):
    not_advrec = MemoryStore("odd", files={"artifacts/readme.txt": b"hello"})
    with pytest.raises(CorruptModelError, match="version 1 of odd is not an advrec model"):
        ModelFiles(not_advrec, tmp_path).path(not_advrec.register("models:/m"))
    garbage = MemoryStore("garbage", files={f"artifacts/{MODEL_FILE}": b"not torch"})
    with pytest.raises(CorruptModelError, match="version 1 of garbage cannot be loaded"):
        ModelFiles(garbage, tmp_path).load(garbage.register("models:/m"))


def test_a_version_whose_files_mlflow_cannot_give_is_corrupt(tmp_path):
    class Missing(MemoryStore):
        def download(self, version, destination):
            raise MlflowException("no artifacts", error_code=RESOURCE_DOES_NOT_EXIST)

    store = Missing("missing")
    with pytest.raises(CorruptModelError, match="version 1 of missing has no downloadable model"):
        ModelFiles(store, tmp_path).path(store.register("models:/m"))
    assert list((tmp_path / "missing").iterdir()) == []  # the staging directory is gone
