"""The published baselines by hand: RDMA, classic DegSim, and their scores on one frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from streams.fraud.baselines import baseline_scores, degsim_pearson, rating_matrix, rdma, robust_z


def frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "rating"]).assign(timestamp=0.0)


def test_rating_matrix_keeps_the_last_rating_and_skips_clicks():
    users, m = rating_matrix(frame([("a", "1", 2.0), ("a", "1", 4.0), ("b", "2", np.nan), ("b", "1", 5.0)]))
    assert users == ["a", "b"] and m.toarray().tolist() == [[4.0], [5.0]]


def test_rdma_by_hand():
    # item 1: ratings 4, 2 (mean 3, count 2); item 2: rating 5 alone
    _, m = rating_matrix(frame([("a", "1", 4.0), ("a", "2", 5.0), ("b", "1", 2.0)]))
    assert rdma(m).tolist() == pytest.approx([(1 / 2 + 0) / 2, 1 / 2])


def test_degsim_is_high_for_near_copies():
    rows = [(f"c{k}", str(i), float(1 + i % 5)) for k in range(12) for i in range(10)]  # identical copies
    rng = np.random.default_rng(0)
    rows += [(f"g{k}", str(i), float(rng.integers(1, 6))) for k in range(30) for i in rng.choice(30, 10, replace=False)]
    users, m = rating_matrix(frame(rows))
    deg = dict(zip(users, degsim_pearson(m)))
    copies, genuine = [deg[f"c{k}"] for k in range(12)], [deg[f"g{k}"] for k in range(30)]
    assert min(copies) == pytest.approx(1.0) and min(copies) > max(genuine)
    assert robust_z(np.array([1.0, 2.0, 3.0]), -1).tolist() == pytest.approx([1 / 1.4826, 0.0, -1 / 1.4826])
    out = baseline_scores(frame(rows), {f"c{k}": "copy" for k in range(12)})
    assert set(out) == {"rdma", "degsim"} and out["degsim"]["best_f1"] == 1.0
