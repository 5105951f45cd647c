"""The free-filler surrogate oracle: popular filler at steps=0, the surrogate's choice after, a valid plan."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from streams.adversary.matrix import RatingMatrix
from streams.adversary.oracle import SurrogateOracle
from streams.adversary.surrogate import BPRSurrogate, BPRSurrogateConfig
from tests.unit.conftest import make_ratings
from training.models.mf import MFConfig


def test_the_oracle_starts_from_popular_filler_and_never_does_worse_on_its_surrogate():
    frame = make_ratings(120, 200, seed=3)
    data = RatingMatrix.from_frame(frame)
    surrogate = BPRSurrogate(data.R, BPRSurrogateConfig(epochs=10), mf=replace(MFConfig(), dim=8))
    t = int(np.flatnonzero(data.counts >= 5)[-1])
    popular = SurrogateOracle(data, surrogate, 0.05, 0.05, steps=0)
    profiles = popular.profiles(t)
    n_fill = int(round(0.05 * data.n_items))
    assert profiles.shape == (6, data.n_items) and (profiles[:, t] == data.top).all()
    chosen = np.flatnonzero(profiles[0] > 0)
    chosen = chosen[chosen != t]
    others = np.setdiff1d(np.arange(data.n_items), [*chosen, t])
    assert len(chosen) == n_fill and data.counts[chosen].min() >= data.counts[others].max()  # the most popular
    assert set(np.unique(profiles[profiles > 0])) <= set(data.grid.tolist())
    searched = SurrogateOracle(data, surrogate, 0.05, 0.05, steps=5)
    found = searched.profiles(t)
    assert ((found > 0).sum(1) == n_fill + 1).all()
    assert surrogate.hit_rate(found > 0, t) >= surrogate.hit_rate(profiles > 0, t)  # the best set is kept
    plan = searched.plan([str(data.items[t])], seed=2)
    assert len(plan.users) == 6 and all(e["item_id"] in set(data.items) for e in plan.events())
