"""Popularity: the offline baseline and the scorer's fallback are one class with one ranking."""

import numpy as np
import pandas as pd

from streams.serving.core import Popularity
from training.models.popularity import PopularityRecommender


def test_from_counts_ranks_most_first_and_ties_keep_the_given_order():
    pop = PopularityRecommender.from_counts({"x": 5, "y": 9, "z": 1, "w": 5})
    assert list(pop.ranked) == ["y", "x", "w", "z"] and len(pop) == 4
    assert pop.top(2) == (["y", "x"], [9.0, 5.0])
    assert pop.top(2, exclude={"y"}) == (["x", "w"], [5.0, 5.0])
    assert pop.top(9, exclude={"x", "y", "z", "w"}) == ([], [])


def test_fit_counts_distinct_users_per_item_and_excludes_what_each_saw(toy):
    dup = pd.concat([toy, toy.iloc[:1]], ignore_index=True)  # a repeated (a, 1) counts once
    pop = PopularityRecommender().fit(dup)
    assert dict(zip(pop.ranked, pop.counts)) == {"1": 3, "2": 3, "3": 2, "4": 1, "5": 1, "6": 1}
    assert pop.score(["a", "zz"]).tolist() == [list(pop.counts)] * 2
    items, scores = pop.recommend(["a", "c", "new"], k=2)
    assert items[0].tolist() == ["4", "5"] and items[1].tolist() == ["2", "3"] and items[2].tolist() == ["1", "2"]
    assert scores[0].tolist() == [1.0, 1.0] and scores.dtype == np.float32


def test_the_scorer_serves_this_very_class():
    assert Popularity is PopularityRecommender
