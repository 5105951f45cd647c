"""A model as served: each user the mean of its profile's item vectors, the trained row otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from hypothesis import given
from hypothesis import strategies as st

from training.evaluation import Split, evaluate, evaluate_as_served, target_hit_rate
from training.models import BPRRecommender, PopularityRecommender
from training.models.served import AsServed, as_served, profile_rows, stale
from training.sampling import PairSet
from training.vocab import Vocabulary


def mf() -> BPRRecommender:
    """u1 trained to (1, 0), u2 to (0, 1); items a (1, 0), b (0, 1), c (2, 2), d (-1, 3)."""
    model = BPRRecommender(dim=2, device="cpu")
    model.users, model.items = Vocabulary(["u1", "u2"]), Vocabulary(["a", "b", "c", "d"])
    model.net.users = torch.nn.Parameter(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    model.net.items = torch.nn.Parameter(torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [-1.0, 3.0]]))
    return model


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), unique=True, max_size=20))
def test_profile_rows_are_each_users_mean_item_row(pairs):
    table = np.arange(18, dtype=np.float32).reshape(6, 3) ** 1.5
    users = np.array([u for u, _ in pairs], dtype=np.int64)
    items = np.array([i for _, i in pairs], dtype=np.int64)
    rows, counts = profile_rows(table, users, items, 5)
    for user in range(5):
        mine = [i for u, i in pairs if u == user]
        assert counts[user] == len(mine)
        expected = table[mine].mean(0) if mine else np.zeros(3)
        np.testing.assert_allclose(rows[user], expected, rtol=1e-6)


@given(
    st.lists(st.tuples(st.sampled_from(["u1", "u2", "new"]), st.sampled_from("abcdx")), min_size=1, max_size=12),
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 3)), unique=True, max_size=8),
)
def test_the_view_picks_the_profile_exactly_where_the_scorers_rule_says_the_row_is_stale(history, trained):
    model = mf()
    pairs = np.array(trained, dtype=np.int64).reshape(-1, 2)
    model.seen = PairSet(pairs[:, 0], pairs[:, 1])
    served = AsServed(model, pd.DataFrame(history, columns=["user", "item"]))
    for user in served.users.ids:
        profile = model.items.lookup([i for u, i in history if u == user])
        profile = np.unique(profile[profile >= 0])
        if not len(profile):
            assert not served.stale[served.users.lookup([user])[0]]
            continue
        index = model.users.lookup([user])[0]
        mine = np.sort([i for u, i in trained if u == index]) if index >= 0 else None
        assert served.stale[served.users.lookup([user])[0]] == stale(profile, mine)


def test_users_with_a_profile_are_scored_by_its_mean_the_others_as_the_model_scores_them():
    histories = pd.DataFrame({"user": ["u1", "u1", "u2", "new"], "item": ["a", "d", "gone", "b"]})
    served = AsServed(mf(), histories)
    scores = served.score(["u1", "u2", "new", "stranger"])
    # u1: mean of a and d = (0, 1.5); u2 knows no item of its profile: its row (0, 1);
    # new: b's row; stranger has no profile and no row: the model's mean user (0.5, 0.5)
    np.testing.assert_allclose(scores[0], [0.0, 1.5, 3.0, 4.5])
    np.testing.assert_allclose(scores[1], [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(scores[2], [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(scores[3], [0.5, 0.5, 2.0, 1.0])
    items, _ = served.recommend(["u1"], k=2)  # what the profile holds is left out, as the scorer does
    assert items.tolist() == [["c", "b"]]
    model = mf()
    model.seen = PairSet(np.array([0]), np.array([2]))  # u1 trained on c: left out too
    assert AsServed(model, histories).recommend(["u1"], k=2)[0].tolist() == [["b", None]]
    # u1 trained on a and d, all its profile holds: its trained row (1, 0) ranks it
    model.seen = PairSet(np.array([0, 0]), np.array([0, 3]))
    np.testing.assert_allclose(AsServed(model, histories).score(["u1"])[0], [1.0, 0.0, 2.0, -1.0])
    assert as_served(PopularityRecommender(), histories).__class__ is PopularityRecommender


def test_evaluation_as_served_ranks_a_stale_user_by_its_profile():
    # u1's trained row (1, 0) puts a above d; its profile (b) says d: the held-out d ranks first
    # as served and last from the row
    model = mf()
    split = Split(
        train=pd.DataFrame({"user": ["u1"], "item": ["b"], "timestamp": [1.0]}),
        test=pd.DataFrame({"user": ["u1"], "item": ["d"]}),
        negatives=np.array([["a"]], dtype=object),
    )
    assert evaluate(model, split)["hr@10"] == 1.0  # two candidates: both in the top 10
    assert evaluate_as_served(model, split)["ndcg@10"] == 1.0
    assert evaluate(model, split)["ndcg@10"] < 1.0


def test_the_probes_hit_rate_counts_what_a_stale_user_is_served():
    # u1 trained on a; its profile holds b (0, 1), untrained: served d (3) where its row (1, 0) gives c
    model = mf()
    model.seen = PairSet(np.array([0]), np.array([0]))
    histories = pd.DataFrame({"user": ["u1"], "item": ["b"]})
    assert target_hit_rate(model, ["u1"], ["d"], k=1) == 0.0
    assert target_hit_rate(model, ["u1"], ["d"], k=1, histories=histories) == 1.0
