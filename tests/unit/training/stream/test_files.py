"""The default round handler writes the model and its report with lineage."""

from __future__ import annotations

import json

from tests.unit.training.stream.windows import make_trainer, make_windows
from training.models import load_recommender
from training.stream.files import save_round_files
from training.stream.loop import run
from training.stream.quarantine import Quarantine
from training.testing import MemorySource


def test_save_round_files_writes_model_and_report(tmp_path):
    batches, files = make_windows(n_windows=1)
    trainer = make_trainer(tmp_path, files)
    trainer.on_round = save_round_files(tmp_path / "models")
    run(trainer, MemorySource(batches), Quarantine(), idle_timeout=0)
    doc = json.loads((tmp_path / "models" / "round-1.json").read_text())
    assert doc["report"]["round"] == 1 and doc["lineage"]["batches"][0]["uri"] == batches[0].announcement["uri"]
    assert len(load_recommender(tmp_path / "models" / "round-1.pt").users) == 120
