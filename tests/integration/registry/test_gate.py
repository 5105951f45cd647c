"""The gate on the stream trainer's own rounds, with a real MLflow registry (sqlite): a challenger
trained on poisoned data is rejected by the exposure audit, naming the pushed item; after
`rollback` the next round continues from the restored champion."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
import torch

from registry.model_registry import ModelRegistry
from registry.promotion import GateConfig
from streams.sources.attacks import AttackSpec, plan_attack, summarize
from tests.unit.training.stream.windows import attack_window, make_trainer, make_windows
from training.stream.loop import run
from training.stream.quarantine import Quarantine
from training.stream.trainer import WEAK_RECIPE_REASONS
from training.testing import MemorySource, RecordingRounds

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _registry(tmp_path, gate: GateConfig = GateConfig()) -> ModelRegistry:
    return ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", "advrec-gate", gate, cache_dir=tmp_path / "cache")


def _recorded(registry: ModelRegistry, rounds: RecordingRounds):
    def on_round(model, report, lineage):
        rounds(model, report, lineage)
        return registry.on_round(model, report, lineage)

    return on_round


def test_a_challenger_trained_on_poisoned_data_is_rejected_naming_the_pushed_item(tmp_path):
    batches, files = make_windows(n_windows=3)
    genuine = pd.concat(files.values()).rename(
        columns={"user_id": "user", "item_id": "item", "value": "rating", "ts": "timestamp"}
    )
    # A click farm of fresh accounts (fewer events than the trust gate's 20), not flagged yet.
    spec = AttackSpec("click_farm", 0.1, 0.0, n_accounts=40, filler_count=(5, 10), filler_choice="popular")
    plan = plan_attack(spec, summarize(genuine), seed=3)
    attack_window(files, batches, list(plan.events()))
    (target,) = plan.targets
    registry = _registry(tmp_path)
    rounds = RecordingRounds()
    trainer = make_trainer(tmp_path, files, _recorded(registry, rounds), epochs=20)
    trainer.champion = registry
    run(trainer, MemorySource(batches[:2]), Quarantine(), idle_timeout=0)
    assert registry.champion_version() == 1
    champion = trainer.state.model
    run(trainer, MemorySource(batches[2:]), Quarantine(), idle_timeout=0)

    (row,) = [r for r in registry.list_versions() if r["version"] == 2]
    assert row["decision"] == "reject" and registry.champion_version() == 1
    reasons = row["reasons"].split(" | ")
    assert any(r.startswith(f"exposure: item {target} in ") for r in reasons), reasons
    audit = {i["item"]: i for i in rounds.calls[1][1]["exposure"]["items"]}
    assert audit[target]["challenger"] > 0.05 + audit[target]["champion"] and audit[target]["carried"] > 0.9
    # Both models' numbers on the same set are on the version, and the poisoned model is not the base.
    tags = mlflow.MlflowClient(registry.tracking_uri, registry.tracking_uri).get_model_version("advrec-gate", "2").tags
    assert tags["gate.champion_version"] == "1" and float(tags["gate.champion_hr_at_10"]) > 0
    assert float(tags["gate.challenger_exposure_max_jump"]) > 0.05
    assert trainer.state.model is champion and trainer.state.base_version == 1
    # The registry hands the gate's reasons to the trainer: the next round is fitted fresh only if
    # the recipe was rejected too, not for the exposure alarm (what the data did) alone.
    assert trainer.state.refit == any(r.split(":")[0] in WEAK_RECIPE_REASONS for r in reasons)


def test_after_rollback_the_next_round_starts_from_the_restored_champion(tmp_path):
    batches, files = make_windows(n_windows=3)
    # Bounds that promote every sound round: this test is about what the trainer continues from.
    registry = _registry(
        tmp_path, GateConfig(hr_tolerance=1.0, ndcg_tolerance=1.0, max_fgsm_drop=1.0, max_exposure_jump=1.0)
    )
    rounds = RecordingRounds()
    trainer = make_trainer(tmp_path, files, _recorded(registry, rounds))
    trainer.champion = registry
    run(trainer, MemorySource(batches[:2], per_poll=1), Quarantine(), idle_timeout=0)
    assert registry.champion_version() == 2 and trainer.state.base_version == 2
    assert registry.rollback() == 1

    run(trainer, MemorySource(batches[2:]), Quarantine(), idle_timeout=0)
    model, report, lineage = rounds.calls[-1]
    assert lineage["base_version"] == report["champion"]["version"] == 1
    assert model.rounds == registry.load_version(1).rounds + 1 == 2  # version 2 had trained 2 rounds
    tags = registry.version_tags(3)
    assert tags["gate.champion_version"] == "1" and tags["lineage.base_version"] == "1"
    assert registry.champion_version() == 3 and trainer.state.base_version == 3, tags["decision_reasons"]
