"""The scorer's pure core: request validation, model ranking with seen-item exclusion, fallbacks, swaps."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from streams.serving.core import Popularity, Rejected, Request, ScorerCore, ServingModel, parse_request


def tiny_model(version: int = 1) -> ServingModel:
    # user u1 prefers items in order c > b > a > d; u2 the reverse. u1 trained on c.
    users = np.array([[1.0, 0.0], [0.1, 1.0]])
    items = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [0.5, 4.0]])  # a, b, c, d
    seen = np.array([(0 << 31) + 2, (1 << 31) + 3, (1 << 31) + 2], dtype=np.int64)
    return ServingModel(version, ["u1", "u2"], ["a", "b", "c", "d"], users, items, seen)


@given(st.integers(1, 6), st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7)), max_size=40))
def test_seen_items_are_each_users_trained_items(n_users, pairs):
    pairs = [(u, i) for u, i in pairs if u < n_users]
    keys = np.array(sorted({(u << 31) + i for u, i in pairs}), dtype=np.int64)
    model = ServingModel(
        1,
        [f"u{u}" for u in range(n_users)],
        [f"i{i}" for i in range(8)],
        np.zeros((n_users, 2)),
        np.zeros((8, 2)),
        keys,
    )
    for user in range(n_users):
        assert model.seen_items(user).tolist() == sorted({i for u, i in pairs if u == user})


def test_parse_request_accepts_defaults_and_rejects_with_codes():
    assert parse_request(b'{"request_id": "r1", "user_id": "u1"}') == Request("r1", "u1", 10, True)
    assert parse_request(
        json.dumps({"request_id": "r", "user_id": "u", "k": 3, "exclude_seen": False}).encode()
    ) == Request("r", "u", 3, False)
    cases = {
        b"{nope": "malformed_json",
        b"[1]": "not_an_object",
        b'{"user_id": "u"}': "missing_field",
        b'{"request_id": "r", "user_id": 7}': "wrong_type",
        b'{"request_id": " ", "user_id": "u"}': "empty_id",
        b'{"request_id": "r", "user_id": "u", "k": 0}': "bad_k",
        b'{"request_id": "r", "user_id": "u", "k": 101}': "bad_k",
        b'{"request_id": "r", "user_id": "u", "k": "3"}': "wrong_type",
        b'{"request_id": "r", "user_id": "u", "exclude_seen": 1}': "wrong_type",
    }
    for raw, code in cases.items():
        got = parse_request(raw, max_k=100)
        assert isinstance(got, Rejected) and got.code == code and got.reason.startswith(code + ":"), raw


def test_model_ranks_and_excludes_trained_and_profile_items():
    core = ScorerCore()
    core.swap(tiny_model(7))
    served, rejected = core.serve(
        [Request("r1", "u1", 2), Request("r2", "u1", 2, exclude_seen=False), Request("r3", "u2", 5)],
        seen=lambda u: {"b"} if u == "u1" else None,
    )
    assert rejected == []
    # u1's profile holds b: ranked by b's vector (2, 0), its trained c and profile b left out
    assert [s.items for s in served] == [["a", "d"], ["c", "b"], ["b", "a"]]
    assert served[0].scores == [2.0, 1.0] and {s.model_version for s in served} == {7}
    assert [s.source for s in served] == ["profile", "profile", "model"]  # u2 has no profile: its row


def test_a_profile_ranks_a_user_by_the_mean_of_its_items_not_its_trained_row():
    core = ScorerCore()
    core.swap(tiny_model(1))
    profiles = {"u2": {"a"}, "new": {"a", "b", "unknown-item"}}
    served, _ = core.serve(
        [Request("r1", "u2", 2, exclude_seen=False), Request("r2", "new", 4, exclude_seen=False)], seen=profiles.get
    )
    # u2's trained row (0.1, 1) would rank d, c first; its profile, a (1, 0), ranks c, b
    assert (served[0].items, served[0].source) == (["c", "b"], "profile")
    # a user the model never saw: the mean of a and b, (1.5, 0); items the model lacks are ignored
    assert (served[1].items, served[1].scores, served[1].source) == (
        ["c", "b", "a", "d"],
        [4.5, 3.0, 1.5, 0.75],
        "profile",
    )


def test_a_user_trained_on_everything_its_profile_holds_keeps_its_trained_row():
    core = ScorerCore()
    core.swap(tiny_model(1))
    served, _ = core.serve([Request("r", "u2", 2, exclude_seen=False)], seen=lambda u: {"c", "d", "unknown-item"})
    # u2 trained on c and d: its row (0.1, 1) ranks d (4.05), c (0.3); its profile's mean would rank c first
    assert (served[0].items, served[0].source) == (["d", "c"], "model")
    np.testing.assert_allclose(served[0].scores, [4.05, 0.3], rtol=1e-6)


def test_unknown_users_get_popularity_and_nothing_to_serve_is_rejected():
    core = ScorerCore()
    served, rejected = core.serve([Request("r1", "new", 2)])
    assert served == [] and [r.code for r in rejected] == ["no_model"]
    core.swap(tiny_model(3))
    served, _ = core.serve([Request("r2", "new", 2)], seen=lambda u: {"unknown-item"})
    # the model's own training counts: c 2, d 1, a 0, b 0
    assert (served[0].items, served[0].source, served[0].model_version) == (["c", "d"], "popularity", 0)
    core.set_popularity(Popularity.from_counts({"x": 5, "y": 9, "z": 1}))
    served, _ = core.serve([Request("r3", "new", 2), Request("r4", "u1", 1)], seen=lambda u: {"y"})
    assert served[0].items == ["x", "z"] and served[0].scores == [5.0, 1.0]
    assert served[1].source == "model" and served[1].items == ["b"]


def test_swap_replaces_the_served_version_for_the_next_batch():
    core = ScorerCore()
    core.swap(tiny_model(1))
    assert core.serve([Request("r", "u2", 1)])[0][0].model_version == 1
    old = core.swap(tiny_model(2))
    assert old.version == 1 and core.serve([Request("r", "u2", 1)])[0][0].model_version == 2


def test_from_recommender_matches_the_models_own_ranking(ratings):
    from training.models import BPRRecommender

    model = BPRRecommender(dim=8, epochs=1, seed=0).fit(ratings[ratings["user"].astype(int) <= 40])
    serving = ServingModel.from_recommender(model, 5)
    core = ScorerCore()
    core.swap(serving)
    users = ["1", "2", "3"]
    served, _ = core.serve([Request(str(i), u, 10) for i, u in enumerate(users)])
    expected, _ = model.recommend(users, k=10, exclude_seen=True)
    assert [s.items for s in served] == [[str(x) for x in row] for row in expected]


def test_a_hybrid_model_serves_an_item_known_only_from_its_text(group_ratings, group_text):
    from training.models import HybridRecommender

    ids, vec = group_text
    model = HybridRecommender(dim=8, epochs=30, seed=3).fit(group_ratings, item_ids=ids, item_vectors=vec)
    core = ScorerCore()
    core.swap(ServingModel.from_recommender(model, 7))
    users = ["u0", "u1", "u2"]
    served, _ = core.serve([Request(str(i), u, 15) for i, u in enumerate(users)])
    expected, _ = model.recommend(users, k=15, exclude_seen=True)
    assert [s.items for s in served] == [[str(x) for x in row] for row in expected]
    cold = {f"i{k}" for k in range(40, 50)}  # catalog-only: no interaction at all
    assert all(cold & set(s.items) for s in served)
