"""Labels: the feature table, cross-validation, few labels, the label book and the review-queue model."""

from __future__ import annotations

import numpy as np
import pytest

from streams.contract.records import FraudLabel
from streams.fraud import FraudDetector
from streams.fraud.evaluation import prepare, replay
from streams.fraud.supervised import (
    FEATURES,
    LabelBook,
    LabelModel,
    blend,
    cross_validate,
    few_labels,
    prf,
    user_features,
)
from streams.sources.attacks import AttackSpec


@pytest.fixture(scope="module")
def replayed(ml_slice):
    data = prepare(ml_slice, inject=[AttackSpec("bandwagon", 0.05, 0.03)], seed=6)
    det = FraudDetector()
    replay(data.frame, det)
    return det, data.attackers


def test_cross_validation_and_few_labels_on_separable_data():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(60, bool), np.zeros(600, bool)]
    x = rng.normal(size=(660, 4)) + 4.0 * y[:, None]
    cv = cross_validate(x, y, 5, 0)
    assert cv["f1"] > 0.95 and cv["proba"].shape == (660,)
    assert cross_validate(x, y, 5, 0, kind="hgb")["f1"] > 0.95
    out = few_labels(x, y, y.astype(float), 20, 200, 0)
    assert out["blend"]["f1"] > 0.95 and out["labelled"] == 220 and out["scored"] == 440
    assert prf(np.array([1, 0], bool), np.array([1, 1], bool))["precision"] == 0.5
    with pytest.raises(ValueError, match="at least 5 attackers"):
        cross_validate(x[:63], y[:63] & (np.arange(63) < 3), 5, 0)


def test_the_blend_never_ranks_a_user_below_its_unsupervised_score():
    unsup, p = np.array([0.9, 0.2, 0.1]), np.array([0.0, 1.0, 0.1])
    assert blend(p, unsup).tolist() == pytest.approx([0.9, 0.6, 0.1])


def test_user_features_have_no_gaps_where_they_are_defined(replayed):
    det, attackers = replayed
    users, x = user_features(det)
    assert x.shape == (len(det.users), len(FEATURES)) and users == list(det.users)
    col = {f: x[:, k] for k, f in enumerate(FEATURES)}
    assert np.isfinite(col["rdma"]).all() and np.isfinite(col["unsup_score"]).all()
    bad = np.array([u in attackers for u in users])
    assert col["lam"][bad].mean() > col["lam"][~bad].mean() + 0.3


def test_label_book_keeps_the_latest_label_per_user():
    book = LabelBook()
    assert book.update(FraudLabel("u1", "fraud", "ann", 10.0))
    assert not book.update(FraudLabel("u1", "genuine", "bob", 5.0))  # older: ignored
    assert book.update(FraudLabel("u1", "genuine", "bob", 20.0))
    assert book.update(FraudLabel("u2", "fraud", "ann", 1.0))
    assert not book.update(FraudLabel("u2", "fraud", "cid", 2.0))  # same label: the book does not change
    assert book.labels() == {"u1": 0, "u2": 1} and book.counts() == (1, 1) and len(book) == 2


def test_refit_ranks_unlabelled_attackers_above_genuine_users_and_keeps_the_flags(replayed):
    det, attackers = replayed
    bad = sorted(attackers)
    good = sorted(u for u in det.users if u not in attackers)
    book = LabelBook()
    for u in bad[:5]:
        book.update(FraudLabel(u, "fraud", "ann", 1.0))
    for u in good[:50]:
        book.update(FraudLabel(u, "genuine", "ann", 1.0))
    model = LabelModel()
    scores = model.refit(det, book)
    assert model.fitted and set(scores) == set(det.users)
    assert all(scores[u] == 1.0 for u in bad[:5]) and all(scores[u] == 0.0 for u in good[:50])
    rest_bad = [scores[u] for u in bad[5:]]
    rest_good = [scores[u] for u in good[50:]]
    assert min(rest_bad) > np.quantile(rest_good, 0.99)
    for u in bad[5:] + good[50:]:  # the blend never pulls a user below its unsupervised score
        assert scores[u] >= det.score(u).score - 1e-12
    assert det.flagged() == {u for u, v in det.verdicts().items() if v.flagged}


def test_too_few_labels_leave_the_unsupervised_scores(replayed):
    det, attackers = replayed
    book = LabelBook()
    book.update(FraudLabel(sorted(attackers)[0], "fraud", "ann", 1.0))
    model = LabelModel()
    scores = model.refit(det, book)
    assert not model.fitted
    some = next(u for u in det.users if u not in attackers)
    assert scores[some] == det.score(some).score
