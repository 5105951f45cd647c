"""The bootstrap round and its poisoning probe (a bandwagon attack from the one attack generator)."""

import math

import pandas as pd
import pytest

from training.bootstrap import bandwagon_probe, bootstrap_round
from training.evaluation import evaluate, leave_last_out, poisoning_lift
from training.models import BPRRecommender, PopularityRecommender, build_model


def test_bandwagon_probe_adds_a_share_of_fake_users_pushing_unpopular_targets(ratings):
    poisoned, targets = bandwagon_probe(ratings, seed=0)
    pd.testing.assert_frame_equal(poisoned.iloc[: len(ratings)], ratings)  # the genuine rows untouched
    fake = poisoned.iloc[len(ratings) :]
    assert fake["user"].nunique() == round(0.05 * ratings["user"].nunique()) == 15
    assert not set(fake["user"]) & set(ratings["user"])
    counts = ratings["item"].value_counts()
    assert len(set(targets)) == 5 and targets == sorted(targets) and counts[targets].between(5, 20).all()
    most_popular = list(counts.drop(targets).index[:3])
    for _, profile in fake.groupby("user"):
        assert len(profile) == profile["item"].nunique() == 35  # 5 targets + 30 others, as before
        rated = dict(zip(profile["item"], profile["rating"]))
        assert all(rated[t] == 5.0 for t in targets + most_popular)  # bandwagon: push with the popular
    again, same = bandwagon_probe(ratings, seed=0)
    pd.testing.assert_frame_equal(again, poisoned)
    assert same == targets and bandwagon_probe(ratings, seed=1)[1] != targets


def test_bootstrap_round_reports_accuracy_poisoning_and_the_champion_on_one_split(ratings):
    champion = BPRRecommender(dim=8, epochs=2, device="cpu").fit(ratings)
    model, report, split = bootstrap_round(ratings, "bpr", epochs=10, seed=0, champion=champion, champion_version=3)
    assert isinstance(model, BPRRecommender) and len(model.epoch_seconds) == 10
    assert report["eval_users"] == len(split.test) == 300
    assert split.test.equals(leave_last_out(ratings, seed=0).test)
    assert 0 < report["hr@10"] <= 1 and set(report["fgsm"]) == {"0.1", "0.25"}
    # the popularity list on the same split: the gate's floor (a missing one holds the version)
    popularity = evaluate(PopularityRecommender().fit(split.train), split)
    assert report["popularity"] == {"hr@10": popularity["hr@10"], "ndcg@10": popularity["ndcg@10"]}
    poisoning = report["poisoning"]
    assert poisoning["lift"] == pytest.approx(poisoning["hr@50_poisoned"] - poisoning["hr@50_clean"])
    # the probe's model, trained as bootstrap_round trains it: the attack pushes its targets to the
    # genuine users' trained rows; the report measures the users as served, by their profiles
    poisoned, targets = bandwagon_probe(split.train, share=0.05, n_targets=5, seed=0)
    bad = build_model("bpr", seed=0).fit(poisoned, epochs=10)
    users = list(split.test["user"])
    assert poisoning_lift(model, bad, users, targets)["lift"] > 0
    assert poisoning == poisoning_lift(model, bad, users, targets, histories=split.train)
    assert set(report["champion"]) == {"hr@10", "ndcg@10", "recall@20", "ndcg@20", "fgsm", "version"}
    assert report["champion"]["version"] == 3 and set(report["champion"]["fgsm"]) == {"0.1", "0.25"}
    assert all(math.isfinite(report["champion"][k]) for k in ("hr@10", "ndcg@10", "recall@20", "ndcg@20"))
    audit = report["exposure"]
    assert audit["users"] == 300 and audit["k"] == 10 and audit["items"]  # every user is known to the champion
    assert all(i["challenger"] > i["champion"] and i["carried"] == 0.0 for i in audit["items"])
    _, quiet, _ = bootstrap_round(ratings, "bpr", epochs=1, seed=0, poison=False)
    assert "poisoning" not in quiet and "champion" not in quiet and "exposure" not in quiet
