"""The ID + text hybrid: same as APR/BPR without text, cold items from text alone, warm start, files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from training.evaluation import fgsm_perturb
from training.models import (
    MODEL_KINDS,
    APRRecommender,
    BPRRecommender,
    HybridRecommender,
    build_model,
    load_recommender,
)


def small(**kw):
    return HybridRecommender(epochs=6, dim=8, seed=3, **kw)


def test_hybrid_is_a_model_kind():
    assert MODEL_KINDS["hybrid"] is HybridRecommender and HybridRecommender.uses_item_text
    assert isinstance(build_model("hybrid", seed=1), HybridRecommender)
    assert not APRRecommender.uses_item_text


def test_no_text_is_bpr_exactly_and_apr_up_to_float_rounding(group_ratings):
    """Without text the hybrid is the ID model: BPR bit for bit; APR up to the order in which the
    perturbation sums a row's gradients (APR sums users and items in one pass, the hybrid per table)."""
    ref = BPRRecommender(epochs=6, dim=8, seed=3).fit(group_ratings)
    hyb = small(adversarial=False, reg=3e-3).fit(group_ratings)
    assert torch.equal(ref.net.users, hyb.net.users) and torch.equal(ref.net.items, hyb.net.items)
    np.testing.assert_array_equal(ref.score(["u1", "u2"]), hyb.score(["u1", "u2"]))
    ref = APRRecommender(epochs=6, dim=8, seed=3).fit(group_ratings)
    for adv_scale in ("parts", "vector"):  # without text both step sizes are APR's ε‖e_i‖
        hyb = small(adv_scale=adv_scale).fit(group_ratings)
        torch.testing.assert_close(ref.net.users, hyb.net.users, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ref.net.items, hyb.net.items, rtol=1e-5, atol=1e-6)


def test_adversarial_step_of_an_item_parts_or_vector(group_ratings, group_text):
    """ "parts" moves an item by ε‖e_i‖ + ε‖W t_i‖, "vector" by ε‖q_i‖ (never further), same direction."""
    ids, vec = group_text
    m = small(adv_scale="vector").fit(group_ratings, item_ids=ids, item_vectors=vec)
    u = torch.as_tensor(m.users.lookup(["u0", "u1", "u2", "u3"]))
    i = torch.as_tensor(m.items.lookup(["i0", "i21", "i2", "i23"]))
    j = torch.as_tensor(m.items.lookup(["i30", "i5", "i31", "i7"]))
    pu, qi, qj = m.net.users[u], m.net.item_vectors(i), m.net.item_vectors(j)
    _, di_vector, _ = m.perturbation(u, i, j, pu, qi, qj)
    m.config = dataclasses.replace(m.config, adv_scale="parts")
    _, di_parts, _ = m.perturbation(u, i, j, pu, qi, qj)
    eps = m.config.eps
    torch.testing.assert_close(di_vector.norm(dim=1), eps * qi.detach().norm(dim=1))
    parts = m.net.items[i].norm(dim=1) + m.net.text_part(i).norm(dim=1)
    torch.testing.assert_close(di_parts.norm(dim=1), eps * parts.detach())
    assert (di_parts.norm(dim=1) >= di_vector.norm(dim=1)).all()
    torch.testing.assert_close(F.normalize(di_parts, dim=1), F.normalize(di_vector, dim=1))
    with pytest.raises(ValueError, match="adv_scale"):
        small(adv_scale="both")


@pytest.mark.parametrize("kw", [{}, {"adversarial": False}, {"id_dropout": 0.5}])
def test_cold_item_scored_from_text_alone(group_ratings, group_text, kw):
    ids, vec = group_text
    m = small(**kw).fit(group_ratings, item_ids=ids, item_vectors=vec)
    cold = ["i40", "i41", "i47"]
    idx = m.items.lookup(cold)
    assert (idx >= 0).all() and not m.net.trained[idx].any()
    assert torch.count_nonzero(m.net.items[idx]) == 0  # never trained: rows stay zero
    users = ["u0", "u1"]
    expect = m.net.users[m.users.lookup(users)] @ (torch.as_tensor(vec[40:50][[0, 1, 7]]) @ m.net.proj.T).T
    got = m.score(users)[:, idx]
    np.testing.assert_allclose(got, expect.detach().numpy(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # whatever sits in the ID row
        m.net.items[idx] = 5.0
    np.testing.assert_allclose(m.score(users)[:, idx], got, rtol=1e-6)


def test_cold_items_follow_their_text(group_ratings, group_text):
    """An even user (likes items 0-19) ranks the even-text cold items above the odd-text ones."""
    ids, vec = group_text
    m = HybridRecommender(epochs=30, dim=8, seed=3).fit(group_ratings, item_ids=ids, item_vectors=vec)
    even_cold, odd_cold = (
        m.items.lookup([f"i{k}" for k in range(40, 45)]),
        m.items.lookup([f"i{k}" for k in range(45, 50)]),
    )
    even_users = [f"u{u}" for u in range(0, 60, 2)]
    scores = m.score(even_users)
    assert (scores[:, even_cold].mean(1) > scores[:, odd_cold].mean(1)).mean() > 0.9


def test_negatives_only_among_trained_items(group_ratings, group_text):
    ids, vec = group_text
    m = small().fit(group_ratings, item_ids=ids, item_vectors=vec)
    assert set(m._active_items().tolist()) == set(m.items.lookup([f"i{k}" for k in range(40)]).tolist())


def test_warm_start_keeps_old_rows_and_projection_as_the_catalog_grows(group_ratings, group_text):
    ids, vec = group_text
    m = small().fit(group_ratings[group_ratings["user"] != "u59"], item_ids=ids[:45], item_vectors=vec[:45])
    users, items, proj = m.net.users.detach().clone(), m.net.items.detach().clone(), m.net.proj.detach().clone()
    n_u, n_i = len(m.users), len(m.items)
    old_users, old_items = m.users.ids, m.items.ids
    new = pd.DataFrame({"user": ["u59", "u59", "u999"], "item": ["i21", "i45", "i46"], "rating": 5.0, "timestamp": 1e9})
    m.add_items(ids[45:], vec[45:])  # growing alone changes no old row, nor W
    assert torch.equal(m.net.items[:n_i], items) and torch.equal(m.net.proj, proj)
    stats = m.train_round(new, history=group_ratings, epochs=0)
    assert stats["new_users"] == 2 and m.users.ids[:n_u] == old_users and m.items.ids[:n_i] == old_items
    assert torch.equal(m.net.users[:n_u], users) and torch.equal(m.net.items[:n_i], items)
    assert torch.equal(m.net.proj, proj)
    assert m.net.trained[m.items.lookup(["i45", "i46"])].all()  # they now have interactions
    assert not m.net.trained[m.items.lookup(["i47"])].any()  # still cold
    m.train_round(new, history=group_ratings, epochs=1)  # and training continues
    assert not torch.equal(m.net.proj, proj)


def test_text_from_another_feature_space_is_refused(group_ratings, group_text):
    ids, vec = group_text
    meta = {"name": "a", "version": "1", "dim": 16, "fields": ["categories"], "text_format": "f/1"}
    m = small().fit(group_ratings, item_ids=ids, item_vectors=vec, encoder=meta)
    with pytest.raises(ValueError):
        m.add_items(["x"], np.ones((1, 8), np.float32))
    with pytest.raises(ValueError):
        m.add_items(["x"], vec[:1], encoder={**meta, "version": "2"})
    with pytest.raises(ValueError):
        m.add_items(["x"], vec[:1], encoder={**meta, "fields": ["title"]})
    m.add_items(["x"], vec[:1], encoder=meta)


def test_text_added_after_id_only_training(group_ratings, group_text):
    ids, vec = group_text
    m = small().fit(group_ratings)
    users, items = m.net.users.detach().clone(), m.net.items.detach().clone()
    m.add_items(ids, vec)
    assert m.d_text == 16 and torch.equal(m.net.users, users) and torch.equal(m.net.items[: len(items)], items)
    m.train_round(group_ratings.head(20), epochs=1)


def test_save_load_round_trip(tmp_path, group_ratings, group_text):
    ids, vec = group_text
    meta = {"name": "hashing", "version": "1/16", "dim": 16, "fields": ["text"], "text_format": "advrec.item_text/1"}
    m = small(id_dropout=0.25).fit(group_ratings, item_ids=ids, item_vectors=vec, encoder=meta)
    m.save(tmp_path / "m.pt")
    blob = torch.load(tmp_path / "m.pt", weights_only=True)  # plain values only
    assert blob["format"] == "advrec.hybrid/2" and blob["kind"] == "hybrid" and blob["text_encoder"] == meta
    back = load_recommender(tmp_path / "m.pt")
    assert isinstance(back, HybridRecommender)
    assert back.config == m.config and back.text_encoder == meta and back.rounds == m.rounds
    assert back.users == m.users and back.items == m.items
    np.testing.assert_array_equal(back.seen.keys, m.seen.keys)
    for k, v in m.net.state_dict().items():
        assert torch.equal(v, back.net.state_dict()[k]), k
    np.testing.assert_array_equal(back.score(["u0", "u7", "nobody"]), m.score(["u0", "u7", "nobody"]))
    # Adam's second moments and step count carry across a restart, as for BPR (a warm start continues)
    assert set(back.adam) == set(m.adam) == {"users", "items", "proj"}
    for name, st in m.adam.items():
        for k, v in st.items():
            assert torch.equal(v, back.adam[name][k]), (name, k)
    back.train_round(group_ratings.head(30), epochs=1)  # a loaded model keeps training


def test_as_mf_matches_scores_and_fgsm_attacks_the_effective_vectors(group_ratings, group_text):
    ids, vec = group_text
    m = small().fit(group_ratings, item_ids=ids, item_vectors=vec)
    sub = ["i3", "i45", "i22"]
    mf = m.as_mf(sub)
    np.testing.assert_allclose(mf.score(["u0", "u1"]), m.score(["u0", "u1"])[:, m.items.lookup(sub)], rtol=1e-6)
    full = m.as_mf()
    np.testing.assert_allclose(full.score(["u0"]), m.score(["u0"]), rtol=1e-6)
    attacked = fgsm_perturb(m, group_ratings, 0.25)
    assert isinstance(attacked, BPRRecommender) and not np.allclose(attacked.score(["u0"]), m.score(["u0"]))
    np.testing.assert_allclose(full.score(["u0"]), m.score(["u0"]), rtol=1e-6)  # the model itself is untouched
