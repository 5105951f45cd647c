"""The cold-start protocol: whole items held out, cold candidates, metadata popularity, one JSON report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training.cold_start import cold_test, eval_cold_start, metadata_popularity, noise_floor, split_cold_items
from training.text.encoders import HashingEncoder


def catalog_for(ratings):
    items = sorted(ratings["item"].unique(), key=lambda s: int(s[1:]))
    return pd.DataFrame(
        {
            "item": items,
            "title": [f"Film {s}" for s in items],
            "year": pd.array([1990 + int(s[1:]) % 8 for s in items], dtype="Int64"),
            "categories": [("Drama",) if int(s[1:]) < 20 else ("Comedy",) for s in items],
            "description": "",
        }
    )


def test_split_holds_out_whole_items(group_ratings):
    warm, cold, cold_items = split_cold_items(group_ratings, 0.25, seed=1)
    assert len(cold_items) == 10
    assert not warm["item"].isin(cold_items).any() and cold["item"].isin(cold_items).all()
    assert len(warm) + len(cold) == len(group_ratings)
    assert (
        split_cold_items(group_ratings, 0.25, seed=1)[2]
        == cold_items
        != split_cold_items(group_ratings, 0.25, seed=2)[2]
    )


def test_cold_test_candidates(group_ratings):
    _, cold, cold_items = split_cold_items(group_ratings, 0.25, seed=1)
    test, neg = cold_test(cold, cold_items, n_negatives=99, seed=0)
    assert test["user"].is_unique
    for (user, target), row in zip(test.itertuples(index=False), neg):
        mine = set(cold.loc[cold["user"] == user, "item"])
        last = cold[cold["user"] == user].sort_values("timestamp")["item"].iloc[-1]
        assert target == last
        got = [x for x in row if x is not None]
        assert len(got) == len(set(got)) == len(set(cold_items) - mine)  # fewer than 99 exist here
        assert not (set(got) & mine) and set(got) <= set(cold_items)


def test_metadata_popularity_reads_no_cold_interaction(group_ratings):
    warm, cold, cold_items = split_cold_items(group_ratings, 0.25, seed=1)
    cat = catalog_for(group_ratings)
    a = metadata_popularity(warm, cat, cold_items)
    b = metadata_popularity(pd.concat([warm, cold.iloc[:0]]), cat, cold_items)
    assert a == b and set(a) == set(cold_items)


def test_eval_cold_start_end_to_end(group_ratings, group_text):
    cat = catalog_for(group_ratings)
    ids, vec = group_text
    vectors = vec[[ids.index(i) for i in cat["item"]]]
    out = eval_cold_start(group_ratings, cat, cold_share=0.25, seed=0, vectors=vectors, epochs=20, dim=8)
    json.dumps(out)
    for key in ("text", "popularity", "random_text", "uniform", "onehot_metadata"):
        assert set(out[key]) == {"hr@10", "ndcg@10"}
    assert set(out["warm"]) == {"text", "id_only", "ndcg_ratio"} and set(out["fgsm"]["text"]) == {"0.1", "0.25"}
    # the group-carrying text beats random vectors on cold items (10 cold items: HR@10 is 1 for all)
    assert out["text"]["ndcg@10"] > out["random_text"]["ndcg@10"]
    val = eval_cold_start(
        group_ratings,
        cat,
        cold_share=0.25,
        seed=0,
        vectors=vectors,
        epochs=2,
        dim=8,
        validation=True,
        fgsm=False,
        baselines=False,
    )
    assert val["validation"] and val["n_cold_items"] <= out["n_cold_items"]


def test_eval_cold_start_encodes_with_the_given_encoder(group_ratings):
    cat = catalog_for(group_ratings)
    out = eval_cold_start(
        group_ratings,
        cat,
        cold_share=0.25,
        seed=0,
        encoder=HashingEncoder(16),
        epochs=2,
        dim=8,
        fgsm=False,
        baselines=("popularity",),
    )
    assert out["encoder"]["name"] == "hashing" and out["encoder"]["fields"] == ["categories", "year", "description"]
    assert out["encoder"]["dim"] == 48


def test_inits_average_the_models_of_several_init_seeds(group_ratings, group_text):
    cat = catalog_for(group_ratings)
    ids, vec = group_text
    vectors = vec[[ids.index(i) for i in cat["item"]]]
    kw = dict(cold_share=0.25, seed=4, vectors=vectors, epochs=3, dim=8, baselines=("random_text", "popularity"))
    out = eval_cold_start(group_ratings, cat, inits=3, **kw)
    json.dumps(out)
    assert out["init_seeds"] == [4, 104, 204] == [r["init_seed"] for r in out["per_init"]]
    for name in ("text", "random_text"):
        for metric in ("hr@10", "ndcg@10"):
            assert out[name][metric] == pytest.approx(np.mean([r[name][metric] for r in out["per_init"]]))
    warm = {m: np.mean([r["warm"][m]["ndcg@10"] for r in out["per_init"]]) for m in ("text", "id_only")}
    assert out["warm"]["ndcg_ratio"] == pytest.approx(warm["text"] / warm["id_only"])
    for r in out["per_init"]:
        assert r["warm"]["ndcg_ratio"] == r["warm"]["text"]["ndcg@10"] / r["warm"]["id_only"]["ndcg@10"]
    nd = [r["warm"]["id_only"]["ndcg@10"] for r in out["per_init"]]
    assert out["noise_floor"]["id_only_vs_itself"] == pytest.approx([nd[1] / nd[0], nd[2] / nd[0]])
    assert out["fgsm"]["text"]["0.1"]["ndcg@10"] == pytest.approx(
        np.mean([r["fgsm"]["text"]["0.1"]["ndcg@10"] for r in out["per_init"]])
    )
    # the first init is the one-run evaluation of the seed; popularity does not depend on the inits
    one = eval_cold_start(group_ratings, cat, inits=1, **kw)
    assert one["per_init"][0] == out["per_init"][0] and one["popularity"] == out["popularity"]
    assert "noise_floor" not in one
    # the ID-only figures of a run can be reused by a run with the same init seeds only
    again = eval_cold_start(group_ratings, cat, inits=3, id_only=out, **kw)
    assert again["warm"] == out["warm"] and again["noise_floor"] == out["noise_floor"]
    with pytest.raises(ValueError, match="init seeds"):
        eval_cold_start(group_ratings, cat, inits=2, id_only=out, **kw)


def test_noise_floor():
    got = noise_floor([0.40, 0.42, 0.38])
    assert got["id_only_vs_itself"] == pytest.approx([1.05, 0.95])
    assert got["id_only_ndcg_sd"] == pytest.approx(0.02)
    assert got["ratio_sd"] == pytest.approx(np.sqrt(2 / 3) * 0.02 / 0.40)
