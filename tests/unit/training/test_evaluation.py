import math

import numpy as np
import pandas as pd
import pytest
import torch

from training.evaluation import (
    Split,
    evaluate,
    fgsm_perturb,
    full_ranks,
    leave_last_out,
    poisoning_lift,
    rank_metrics,
    robustness,
    sampled_ranks,
    target_hit_rate,
)
from training.models import BPRRecommender
from training.sampling import PairSet, sample_distinct_negatives
from training.vocab import Vocabulary


class FixedScores:
    """A fake model with a literal score table."""

    def __init__(self, users, items, table):
        self.users, self.items = Vocabulary(users), Vocabulary(items)
        self.table = np.asarray(table, dtype=np.float32)

    def score(self, user_ids):
        return self.table[self.users.lookup(user_ids)]

    def recommend(self, user_ids, k=10, exclude_seen=True):
        s = self.score(user_ids)
        top = np.argsort(-s, axis=1, kind="stable")[:, :k]
        return np.asarray(self.items.ids, dtype=object)[top], np.take_along_axis(s, top, 1)


def test_rank_metrics_by_hand():
    hr, ndcg = rank_metrics(np.array([0, 1, 3, 12]), k=10)
    assert hr == pytest.approx(3 / 4)
    assert ndcg == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(5) + 0) / 4)
    assert rank_metrics(np.array([10]), k=10) == (0.0, 0.0)


def test_leave_last_out_holds_out_latest_and_samples_unseen_negatives(toy):
    split = leave_last_out(toy, n_negatives=2, seed=0)
    assert dict(zip(split.test["user"], split.test["item"])) == {"a": "3", "b": "2", "c": "1", "d": "2"}
    assert len(split.train) == len(toy) - 4
    for user, negs in zip(split.test["user"], split.negatives):
        assert not set(negs) & set(toy.loc[toy["user"] == user, "item"])
    again = leave_last_out(toy, n_negatives=2, seed=0)
    np.testing.assert_array_equal(split.negatives, again.negatives)


def test_the_99_negatives_of_each_test_user_are_distinct_and_never_positives(ml_slice):
    split = leave_last_out(ml_slice, n_negatives=99, seed=3)
    rated = ml_slice.groupby("user")["item"].agg(set)
    for user, negs in zip(split.test["user"], split.negatives):
        assert len(set(negs)) == 99 and not set(negs) & rated[user]


def test_distinct_negatives_are_drawn_when_few_items_are_left():
    # 12 items, the user rated 2 of them: 10 negatives must be exactly the other 10.
    users = np.array([0, 0])
    got = sample_distinct_negatives(np.array([0]), PairSet(users, np.array([3, 7])), 12, 10, np.random.default_rng(1))
    assert sorted(got[0].tolist()) == [0, 1, 2, 4, 5, 6, 8, 9, 10, 11]


def test_a_catalogue_too_small_for_n_negatives_gives_fewer_all_distinct_and_never_positives():
    # 12 items; user 0 rated 2, user 1 rated 5: at most 7 distinct negatives for everyone
    positives = PairSet(np.array([0, 0, 1, 1, 1, 1, 1]), np.array([3, 7, 0, 1, 2, 3, 4]))
    got = sample_distinct_negatives(np.array([0, 1]), positives, 12, 99, np.random.default_rng(2))
    assert got.shape == (2, 7)
    assert len(set(got[0])) == 7 and not {3, 7} & set(got[0].tolist())
    assert sorted(got[1].tolist()) == [5, 6, 7, 8, 9, 10, 11]


def test_sampled_and_full_ranks_by_hand():
    model = FixedScores(["u", "v"], ["1", "2", "3", "4"], [[0.9, 0.5, 0.7, 0.1], [0.2, 0.8, 0.3, 0.4]])
    split = Split(
        train=pd.DataFrame({"user": ["u", "v"], "item": ["1", "2"]}),
        test=pd.DataFrame({"user": ["u", "v"], "item": ["3", "4"]}),
        negatives=np.array([["2", "4"], ["1", "3"]], dtype=object),
    )
    assert sampled_ranks(model, split).tolist() == [0, 0]
    # full ranking excludes training items: u ranks 3 first once 1 is removed; v: 4 after nothing else
    assert full_ranks(model, split).tolist() == [0, 0]
    model.table[1, 2] = 0.45  # v: item 3 now above 4
    assert full_ranks(model, split).tolist() == [0, 1]
    metrics = evaluate(model, split)
    assert metrics["hr@10"] == 1.0 and metrics["recall@20"] == 1.0
    assert metrics["ndcg@20"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_unknown_test_item_counts_as_a_miss():
    model = FixedScores(["u"], ["1", "2"], [[0.1, 0.2]])
    split = Split(
        pd.DataFrame({"user": ["u"], "item": ["1"]}),
        pd.DataFrame({"user": ["u"], "item": ["9"]}),
        np.array([["2"]], dtype=object),
    )
    assert sampled_ranks(model, split).tolist() == [1]
    assert rank_metrics(full_ranks(model, split), 1) == (0.0, 0.0)


def test_fgsm_moves_each_row_by_eps_times_its_norm_and_hurts(ml_slice):
    split = leave_last_out(ml_slice, seed=0)
    model = BPRRecommender(dim=16, epochs=10, device="cpu").fit(split.train)
    before = model.net.users.detach().clone()
    bad = fgsm_perturb(model, split.train, eps=0.25)
    moved = (bad.net.users - model.net.users).norm(dim=1)
    np.testing.assert_allclose(moved.detach().numpy(), 0.25 * model.net.users.norm(dim=1).detach().numpy(), rtol=1e-4)
    assert evaluate(bad, split)["ndcg@10"] < evaluate(model, split)["ndcg@10"]
    assert torch.equal(model.net.users, before)  # the model itself is untouched
    # scale-free: inflating every norm tenfold does not change the damage
    rob = robustness(model, split, eps=(0.25,))
    with torch.no_grad():
        model.net.users.mul_(10.0)
    assert robustness(model, split, eps=(0.25,))["0.25"]["hr@10"] == pytest.approx(rob["0.25"]["hr@10"], abs=0.02)


def test_target_hit_rate_and_poisoning_lift_by_hand():
    items = ["1", "2", "3", "4"]
    clean = FixedScores(["u", "v"], items, [[4, 3, 2, 1], [4, 3, 2, 1]])
    poisoned = FixedScores(["u", "v"], items, [[1, 3, 2, 4], [4, 3, 2, 1]])
    assert target_hit_rate(clean, ["u", "v"], ["4"], k=2) == 0.0
    assert target_hit_rate(poisoned, ["u", "v"], ["4", "1"], k=2) == pytest.approx((0.5 + 0.5) / 2)
    lift = poisoning_lift(clean, poisoned, ["u", "v"], ["4"], k=2)
    assert lift == {"hr@2_clean": 0.0, "hr@2_poisoned": 0.5, "lift": 0.5}
