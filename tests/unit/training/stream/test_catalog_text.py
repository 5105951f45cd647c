"""Catalog text in the stream trainer: changed entries reach a hybrid round, catalog-only items become cold items."""

from __future__ import annotations

import pytest

from streams.contract.records import CatalogEntry
from tests.unit.training.stream.windows import make_windows
from training.models import HybridRecommender
from training.stream.catalog import ItemCatalog
from training.stream.loop import run
from training.stream.quarantine import Quarantine
from training.stream.state import StateStore
from training.stream.trainer import Trainer, TrainerConfig
from training.testing import MemorySource, RecordingMetrics, RecordingRounds
from training.text.encoders import HashingEncoder
from training.text.features import encode_items


def entry(item: str, genre: str) -> CatalogEntry:
    return CatalogEntry(item, f"Item {item}", "", [genre], 2000)


def test_item_catalog_keeps_the_latest_entry_and_what_changed():
    catalog = ItemCatalog()
    catalog.apply([("1", entry("1", "A")), ("2", entry("2", "B")), ("1", entry("1", "C"))])
    assert catalog.entries["1"] == entry("1", "C") and len(catalog) == 2
    assert [e.item_id for e in catalog.take_changed()] == ["1", "2"] and catalog.take_changed() == []
    catalog.apply([("2", entry("2", "B"))])  # the same entry again: no change
    assert catalog.take_changed() == []
    catalog.apply([("2", None), ("3", entry("3", "A"))])  # 2 deleted
    taken = catalog.take_changed()
    assert [e.item_id for e in taken] == ["3"] and "2" not in catalog.entries
    catalog.restore(taken)  # a failed round gives them back
    assert [e.item_id for e in catalog.take_changed()] == ["3"]


def hybrid_trainer(tmp_path, files, rounds) -> Trainer:
    encoder = HashingEncoder(32)
    return Trainer(
        TrainerConfig(model="hybrid", epochs=2, first_epochs=5),
        StateStore(tmp_path / "state"),
        read_batch=files.__getitem__,
        on_round=rounds,
        metrics=RecordingMetrics(),
        item_text=lambda frame: encode_items(encoder, frame),
    )


def test_a_catalog_only_item_enters_the_hybrid_model_as_a_cold_item(tmp_path):
    batches, files = make_windows(n_windows=2, n_users=60, n_items=80)
    catalog = [(str(i), entry(str(i), "A" if i % 2 else "B")) for i in range(1, 81)] + [("new1", entry("new1", "A"))]
    rounds = RecordingRounds()
    trainer = hybrid_trainer(tmp_path, files, rounds)
    run(trainer, MemorySource(batches[:1], catalog=catalog), Quarantine(), idle_timeout=0)
    ((model, report, lineage),) = rounds.calls
    assert isinstance(model, HybridRecommender) and lineage["model_kind"] == "hybrid"
    assert report["text_encoder"]["name"] == "hashing" and report["catalog_items"] == len(catalog)
    idx = model.items.lookup(["new1"])[0]
    assert idx >= 0 and not model.net.trained[idx] and model.net.text[idx].any()  # cold, with its text
    items, _ = model.recommend(["1"], k=len(model.items))
    assert "new1" in items[0].tolist()  # recommendable from text alone

    # the next round: only the entries that changed since are encoded
    encoded = []
    encoder = HashingEncoder(32)
    trainer.item_text = lambda frame: encoded.append(frame["item"].tolist()) or encode_items(encoder, frame)
    run(trainer, MemorySource(batches[1:], catalog=[("new2", entry("new2", "B"))]), Quarantine(), idle_timeout=0)
    assert encoded == [["new2"]]
    model = rounds.calls[-1][0]
    assert model.items.lookup(["new1", "new2"]).min() >= 0 and rounds.calls[-1][1]["catalog_items"] == 1


def test_a_failed_round_encodes_its_catalog_entries_again(tmp_path):
    batches, files = make_windows(n_windows=2, n_users=60, n_items=80)
    calls = []

    def on_round(model, report, lineage):
        calls.append(report["catalog_items"])
        if len(calls) == 1:
            raise RuntimeError("MLflow is down")

    trainer = hybrid_trainer(tmp_path, files, on_round)
    source = MemorySource(batches[:1], catalog=[("new1", entry("new1", "A"))])
    with pytest.raises(RuntimeError):
        run(trainer, source, Quarantine(), idle_timeout=0, max_failures=1)
    assert trainer.state.model is None  # back to the saved state: no model yet
    run(trainer, source, Quarantine(), idle_timeout=0)
    assert calls == [1, 1] and trainer.state.model.items.lookup(["new1"])[0] >= 0
