"""The lift model and the evaluation's JSON on a small slice."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from streams.adversary.evaluation import HEURISTICS, EvalConfig
from streams.adversary.game import GameConfig
from streams.adversary.learner import GanConfig
from streams.adversary.lift import fit_stacked, merge_triples
from streams.adversary.protocol import run
from streams.adversary.surrogate import ALSConfig
from tests.unit.conftest import make_ratings
from training.models.mf import MFConfig

TINY_BPR = replace(MFConfig(), dim=8, epochs=2, batch_size=256)


def test_stacked_models_train_exactly_as_each_would_alone():
    rng = np.random.default_rng(0)
    genuine = rng.integers(0, 30, 300), rng.integers(0, 40, 300)
    attack = rng.integers(30, 40, 200), rng.integers(0, 40, 200)  # new accounts: more batches per epoch
    none = (np.empty(0, int), np.empty(0, int))
    config = replace(TINY_BPR, batch_size=64, epochs=3)
    both = fit_stacked(genuine, [attack, none], [0, 1], 40, 40, config)
    alone = fit_stacked(genuine, [none], [1], 40, 40, config)
    assert np.allclose(both[1][0], alone[0][0], atol=1e-6) and np.allclose(both[1][1], alone[0][1], atol=1e-6)
    poisoned_alone = fit_stacked(genuine, [attack], [0], 40, 40, config)
    assert np.allclose(both[0][1], poisoned_alone[0][1], atol=1e-6)
    assert not np.allclose(both[0][1], both[1][1])


def test_a_poisoned_epoch_is_the_clean_epoch_with_the_attack_triples_at_uniform_positions():
    genuine = tuple(np.arange(100) + k * 1000 for k in range(3))
    extra = tuple(-np.arange(1, 11) - k * 1000 for k in range(3))
    rng = np.random.default_rng(0)
    first_positions = []
    for _ in range(400):
        merged = merge_triples(genuine, extra, rng)
        for col, g, x in zip(merged, genuine, extra):
            assert np.array_equal(col[col >= 0], g) and np.array_equal(col[col < 0], x)  # both in their order
        first_positions.append(int(np.flatnonzero(merged[0] < 0)[0]))
    positions = np.concatenate([np.flatnonzero(merge_triples(genuine, extra, rng)[0] < 0) for _ in range(400)])
    assert abs(positions.mean() - 109 / 2) < 2 and len(set(first_positions)) > 20  # uniform over the 110 slots
    assert merge_triples(genuine, ((), (), ()), rng) is genuine


@pytest.fixture(scope="module")
def measured():
    ratings = make_ratings(150, 200, seed=5)
    return run(
        ratings,
        0.05,
        0.03,
        seed=1,
        gan=GanConfig(steps=3, hidden=32, surrogate=ALSConfig(dim=8, sweeps=3)),
        evaluation=EvalConfig(n_targets=1, bpr_seeds=(0,), bpr=TINY_BPR),
        game=GameConfig(rounds=1, g_steps=2),
    )


def test_summary_is_the_issues_json(measured):
    summary, _ = measured
    assert set(summary) == {"attacks", "hardened"}
    assert set(summary["attacks"]) == {*HEURISTICS, "gan"}
    for figures in summary["attacks"].values():
        assert set(figures) == {"lift", "recall"}
        assert -1 <= figures["lift"] <= 1 and 0 <= figures["recall"] <= 1
    assert set(summary["hardened"]) == {"recall_gan", "fpr"}
    assert 0 <= summary["hardened"]["recall_gan"] <= 1 and 0 <= summary["hardened"]["fpr"] <= 1


def test_details_hold_the_game_curves_baseline_and_times(measured):
    summary, details = measured
    curves = details["game"]["curves"]
    assert [c["round"] for c in curves] == [0, 1]
    assert curves[-1]["recall_gan"] == summary["hardened"]["recall_gan"]
    assert details["game"]["training_attackers"]["gan"] > 0  # generated profiles trained the detector
    assert set(details["heuristic_recall"]["after_hardening"]) == set(HEURISTICS)
    assert "template" in details["attacks"] and "template" not in summary["attacks"]
    assert details["seconds"]["generator_training"] > 0
    row = details["per_target"][0]
    assert set(row["lift"]) == {*HEURISTICS, "gan", "template"}
    assert summary["attacks"]["gan"]["lift"] == pytest.approx(np.mean(row["lift"]["gan"]))
