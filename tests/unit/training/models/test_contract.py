"""The contract every recommender of `MODEL_KINDS` passes, whatever it is (river's checks, implicit's mixin).

Fit on a small seeded frame → `recommend` gives k distinct unseen items per user, best first;
save → load gives identical scores; a warm-started round on new users and items leaves the old
embedding rows it did not train bit-identical (models with embedding tables). A new kind needs an
entry in SETTINGS (its small, fast configuration), nothing else.
"""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tests.unit.conftest import make_ratings
from training.models import MODEL_KINDS, build_model, load_recommender

MF = {"dim": 8, "epochs": 3, "device": "cpu", "seed": 1}
SETTINGS = {"bpr": MF, "apr": MF, "popularity": {}, "hybrid": MF}
KINDS = sorted(MODEL_KINDS)
WARM_STARTED = [kind for kind in KINDS if hasattr(MODEL_KINDS[kind], "train_round")]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """60 users × 150 items, 20–60 ratings each: every user has at least 90 unseen items."""
    return make_ratings(60, 150, seed=11)


def _fitted(kind: str, frame: pd.DataFrame):
    model = build_model(kind, **SETTINGS[kind])
    assert model.fit(frame) is model
    return model


def test_every_kind_has_contract_settings():
    assert set(SETTINGS) == set(MODEL_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_recommend_gives_k_distinct_unseen_items_best_first(kind, frame):
    model = _fitted(kind, frame)
    users = ["1", "2", "17", "60"]
    scores = model.score(users)
    assert scores.shape == (4, len(model.items))
    items, top = model.recommend(users, k=10)
    assert items.shape == top.shape == (4, 10) and np.isfinite(top).all()
    assert np.all(np.diff(top, axis=1) <= 0)
    for user, row in zip(users, items):
        seen = set(frame.loc[frame["user"] == user, "item"])
        assert len(set(row)) == 10 and not set(row) & seen and None not in set(row)
    np.testing.assert_array_equal(model.score(users), scores)  # recommending changed nothing
    items, _ = model.recommend(["nobody"], k=10)
    assert len(set(items[0]) - {None}) == 10


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_gives_identical_scores(kind, frame, tmp_path):
    model = _fitted(kind, frame)
    model.save(tmp_path / "m.pt")
    torch.load(tmp_path / "m.pt", weights_only=True)  # plain values and tensors, no code
    for back in (load_recommender(tmp_path / "m.pt"), MODEL_KINDS[kind].load(tmp_path / "m.pt")):
        assert type(back) is type(model) and back.kind == kind
        assert back.users == model.users and back.items == model.items
        users = ["1", "5", "33", "nobody"]
        np.testing.assert_array_equal(back.score(users), model.score(users))
        for a, b in zip(back.recommend(users, k=7), model.recommend(users, k=7)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_of_format_version_1_still_loads_with_identical_scores(kind, frame, tmp_path):
    """Version 2 stores each id list as one JSON text (fast to unpickle); version 1 files, with
    lists, are what every model registered before it holds."""
    model = _fitted(kind, frame)
    model.save(tmp_path / "m.pt")
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    family = model.save_format.rsplit("/", 1)[0]
    assert model.save_format == f"{family}/2" and blob["format"] == model.save_format
    assert blob["users"] == json.dumps(model.users.ids) and blob["items"] == json.dumps(model.items.ids)
    old = {**blob, "format": f"{family}/1", "users": model.users.ids, "items": model.items.ids}
    torch.save(old, tmp_path / "v1.pt")
    back = load_recommender(tmp_path / "v1.pt")
    assert back.users == model.users and back.items == model.items
    users = ["1", "5", "33", "nobody"]
    np.testing.assert_array_equal(back.score(users), model.score(users))
    torch.save({**old, "format": f"{family}/3"}, tmp_path / "v3.pt")  # a later version: refused, not misread
    with pytest.raises(ValueError, match=f"not an {family}/1 or {family}/2 file"):
        load_recommender(tmp_path / "v3.pt")


@pytest.mark.parametrize("kind", WARM_STARTED)
def test_warm_start_keeps_old_rows_bit_identical(kind, frame):
    model = _fitted(kind, frame)
    users, items = model.users.ids, model.items.ids
    p, q = model.net.users.detach().clone(), model.net.items.detach().clone()
    more = make_ratings(10, 80, seed=12).assign(user=lambda d: "n" + d["user"])  # new users…
    more.loc[more.index % 2 == 0, "item"] = "new" + more["item"]  # …on new items and old ones
    model.train_round(more, epochs=0)  # grow only
    assert model.users.ids[: len(users)] == users and model.items.ids[: len(items)] == items
    assert len(model.users) == len(users) + 10 and len(model.items) > len(items)
    assert torch.equal(model.net.users[: len(users)], p) and torch.equal(model.net.items[: len(items)], q)
    grown = model.net.users[len(users) :].detach().clone()
    model.train_round(more, epochs=2)  # a round on the new users trains their rows, and no old user's
    assert torch.equal(model.net.users[: len(users)], p)
    assert not torch.equal(model.net.users[len(users) :], grown)
