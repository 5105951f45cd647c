"""BPR matrix factorisation (and APR, which shares its machinery): tables, determinism, warm start, ranking."""

import numpy as np
import pandas as pd
import pytest
import torch

from training.evaluation import evaluate, leave_last_out
from training.models import APRRecommender, BPRRecommender, PopularityRecommender, load_recommender
from training.models.mf import MatrixFactorization

KINDS = [BPRRecommender, APRRecommender]
SMALL = dict(dim=16, epochs=4, device="cpu")


@pytest.fixture(scope="module")
def small_split(ml_slice):
    return leave_last_out(ml_slice, seed=0)


def test_growing_tables_keeps_old_rows_bit_identical():
    net = MatrixFactorization(5, 7, 8, 0.1, torch.Generator().manual_seed(0))
    users, items = net.users.detach().clone(), net.items.detach().clone()
    net.grow(9, 7, torch.Generator().manual_seed(1))
    net.grow(9, 12, torch.Generator().manual_seed(2))
    assert net.users.shape == (9, 8) and net.items.shape == (12, 8)
    assert torch.equal(net.users[:5], users) and torch.equal(net.items[:7], items)
    assert not torch.equal(net.users[5:], torch.zeros(4, 8))


def test_new_rows_are_initialised_like_the_originals():
    net = MatrixFactorization(2000, 1, 16, 0.1, torch.Generator().manual_seed(0))
    net.grow(4000, 1, torch.Generator().manual_seed(1))
    old, new = net.users[:2000].detach(), net.users[2000:].detach()
    assert abs(old.std().item() - new.std().item()) < 0.005
    assert abs(new.mean().item()) < 0.005
    assert np.isclose(new.std().item(), 0.1, atol=0.005)


@pytest.mark.parametrize("cls", KINDS)
def test_fit_is_deterministic_on_cpu_with_a_seed(cls, toy):
    a = cls(**SMALL, seed=3).fit(toy)
    b = cls(**SMALL, seed=3).fit(toy)
    c = cls(**SMALL, seed=4).fit(toy)
    assert torch.equal(a.net.users, b.net.users) and torch.equal(a.net.items, b.net.items)
    assert not torch.equal(a.net.users, c.net.users)


@pytest.mark.parametrize("cls", KINDS)
def test_recommend_shapes_and_excludes_seen(cls, toy):
    model = cls(**SMALL).fit(toy)
    items, scores = model.recommend(["a", "c"], k=3)
    assert items.shape == (2, 3) and scores.shape == (2, 3)
    assert set(items[0]) == {"4", "5", "6"}
    assert np.all(np.diff(scores, axis=1) <= 0)
    items, _ = model.recommend(["a"], k=6, exclude_seen=False)
    assert set(items[0]) == {"1", "2", "3", "4", "5", "6"}
    items, scores = model.recommend(["nobody"], k=2)
    assert items.shape == (1, 2) and np.isfinite(scores).all()


@pytest.mark.parametrize("cls", KINDS)
def test_save_load_round_trip_gives_identical_recommendations(cls, toy, tmp_path):
    model = cls(**SMALL, seed=1).fit(toy)
    model.save(tmp_path / "m.pt")
    back = load_recommender(tmp_path / "m.pt")
    assert type(back) is cls and back.config == model.config
    assert back.users == model.users and back.items == model.items
    users = ["a", "b", "c", "d", "new"]
    for a, b in zip(model.recommend(users, k=3), back.recommend(users, k=3)):
        np.testing.assert_array_equal(a, b)
    # loading is weights-only: the file holds tensors and plain values, no code
    torch.load(tmp_path / "m.pt", weights_only=True)


def test_the_save_format_keeps_its_envelope_and_keys(toy, tmp_path):
    """Files written before the models package existed must keep loading: same envelope, same keys
    (version 2 differs from 1 only in the id lists, one JSON text each: test_contract)."""
    BPRRecommender(**SMALL).fit(toy).save(tmp_path / "m.pt")
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    assert list(blob) == ["format", "kind", "config", "users", "items", "rounds", "state_dict", "seen", "adam"]
    assert blob["format"] == "advrec.mf/2" and blob["kind"] == "bpr" and set(blob["state_dict"]) == {"users", "items"}
    del blob["adam"]  # a file from before the optimiser state was kept still loads, with a fresh optimiser
    torch.save(blob, tmp_path / "old.pt")
    assert load_recommender(tmp_path / "old.pt").adam == {}


@pytest.mark.parametrize("cls", KINDS)
def test_the_optimiser_state_carries_across_rounds_and_through_a_save(cls, toy, tmp_path):
    model = cls(**SMALL, seed=2).fit(toy, epochs=3)
    steps = float(model.adam["users"]["step"])
    assert steps > 0 and model.adam["users"]["exp_avg"].shape == model.net.users.shape
    model.save(tmp_path / "m.pt")
    back = load_recommender(tmp_path / "m.pt")
    new = pd.DataFrame({"user": ["a", "e"], "item": ["7", "1"], "rating": 5.0, "timestamp": 10.0})
    for m in (model, back):
        m.train_round(new, history=toy, epochs=2)
    assert float(model.adam["users"]["step"]) > steps  # continued, not restarted
    assert model.adam["users"]["exp_avg_sq"].shape[0] == len(model.users) == 5  # grown with the table
    # Continuing from the saved file is continuing in memory: same moments, same weights.
    torch.testing.assert_close(back.net.users.detach(), model.net.users.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("cls", KINDS)
def test_train_round_grows_vocabulary_replays_and_drops_quarantined(cls, toy):
    model = cls(**SMALL).fit(toy)
    users_before = model.net.users.detach().clone()
    new = pd.DataFrame(
        {"user": ["a", "e", "mallory", "mallory"], "item": ["7", "1", "8", "9"], "rating": 5.0, "timestamp": 10.0}
    )
    stats = model.train_round(new, history=toy, quarantined_users={"mallory"}, epochs=2)
    assert stats["events"] == 4 and stats["dropped_quarantined"] == 2
    assert stats["new_users"] == 1 and stats["new_items"] == 1 and stats["replayed"] == 2
    assert "mallory" not in model.users and "8" not in model.items
    assert model.users.ids[:4] == ["a", "b", "c", "d"] and model.net.users.shape[0] == 5
    assert not torch.equal(model.net.users[:4], users_before)  # warm start kept training the old rows
    items, _ = model.recommend(["a"], k=10)
    assert "7" not in items[0] and items[0][-1] is None  # the new interaction is now seen


def test_train_round_from_an_empty_model_is_a_first_fit(toy):
    model = BPRRecommender(**SMALL)
    stats = model.train_round(toy, epochs=1)
    assert stats["new_users"] == 4 and len(model.items) == 6


@pytest.mark.parametrize("cls", KINDS)
def test_training_on_real_slice_beats_popularity(cls, small_split):
    pop = evaluate(PopularityRecommender().fit(small_split.train), small_split)
    model = cls(dim=32, epochs=20, device="cpu", seed=0).fit(small_split.train)
    got = evaluate(model, small_split)
    assert got["hr@10"] > pop["hr@10"] + 0.03, (got, pop)
    assert got["ndcg@10"] > pop["ndcg@10"]
