"""The pure pieces of the detector by hand: features, the decision rule, target detection, state round-trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.fraud.config import DetectorConfig
from streams.fraud.decision import decide, is_lenient, margins, robust_fit
from streams.fraud.features import (
    SelectionNull,
    consensus_corr,
    degsim,
    item_llr,
    selection_evidence,
    selection_null,
)
from streams.fraud.state import ItemTable, UserState
from streams.fraud.targets import campaign_targets, purchase_targets, swarmed_items

CFG = DetectorConfig()


def test_item_llr_is_lower_for_popular_items():
    ell = item_llr(np.array([100.0, 10.0, 1.0]))
    assert ell[0] < ell[1] < ell[2]
    assert ell[2] == pytest.approx(-math.log(3 * 0.5 / 112.5))  # leave-one-out count 0 plus the 0.5 pseudo-count


def test_selection_evidence_tells_uniform_from_popularity_choice():
    rng = np.random.default_rng(0)
    counts = np.round(2000.0 / np.arange(1, 501) ** 0.9) + 1
    null = selection_null(counts, 60)
    ell = item_llr(counts)
    p = counts / counts.sum()
    popular = [ell[rng.choice(500, 40, replace=False, p=p)].mean() for _ in range(200)]
    uniform = [ell[rng.choice(500, 40, replace=False)].mean() for _ in range(200)]
    lam_p, t_p = selection_evidence(np.array(popular), np.full(200, 40.0), null)
    lam_u, t_u = selection_evidence(np.array(uniform), np.full(200, 40.0), null)
    assert abs(np.median(lam_p)) < 0.15 and abs(np.median(lam_u) - 1.0) < 0.15
    assert np.median(t_u) > 3.0 > np.quantile(t_p, 0.99)
    again = SelectionNull.from_dict(json.loads(json.dumps(null.to_dict())))
    assert again.at(40.0) == null.at(40.0)


@pytest.mark.timeout(10)
def test_the_selection_null_of_a_tiny_catalogue_stays_within_its_items():
    # One or two items seen (a fresh stream): the null is computed at once and is a mean of their LLRs.
    assert selection_null(np.array([3.0]), 1).at(1.0)[0] == pytest.approx(item_llr(np.array([3.0]))[0])
    for counts, size in ((np.array([3.0]), 5), (np.array([1.0, 4.0]), 5), (np.array([1.0, 4.0, 2.0]), 60)):
        null, ell = selection_null(counts, size), item_llr(counts)
        e0, sd0 = null.at(np.arange(1.0, 8.0))
        assert np.all((e0 >= ell.min() - 1e-9) & (e0 <= ell.max() + 1e-9)) and np.isfinite(sd0).all()


def test_degsim_is_the_mean_jaccard_to_the_k_nearest():
    # profile of 4 items; neighbours share 2 of 4 and 1 of 2 items: Jaccard 2/6 and 1/5
    assert degsim(np.array([2.0, 1.0]), 4.0, np.array([4.0, 2.0]), 2) == pytest.approx((1 / 3 + 1 / 5) / 2)
    assert degsim(np.array([2.0, 1.0, 4.0]), 4.0, np.array([4.0, 2.0, 4.0]), 1) == 1.0
    assert degsim(np.array([]), 4.0, np.array([]), 10) == 0.0


def test_degsim_keeps_the_values_equal_to_its_bound():
    """The bound is the k-th largest of a sample: values equal to it may be among the k largest."""
    same = np.full(500, 2.0)  # every Jaccard 2 / (4 + 4 - 2)
    assert degsim(same, 4.0, np.full(500, 4.0), 10) == pytest.approx(1 / 3)
    top_in_sample = np.concatenate([np.full(10, 5.0), np.full(490, 1.0)])  # the 10 largest come first
    assert degsim(top_in_sample, 5.0, top_in_sample.copy(), 10) == pytest.approx(1.0)


@settings(max_examples=300, deadline=None)
@given(
    overlaps=st.lists(st.integers(1, 6), min_size=1, max_size=700),
    size=st.integers(1, 40),
    k=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_degsim_on_long_neighbour_lists_equals_the_mean_of_the_k_largest_jaccards(overlaps, size, k, seed):
    """Long lists take the bounded path (a sample's k-th largest prunes them first); few distinct
    overlaps make many ties at the cut."""
    ov = np.array(overlaps, dtype=float)
    sizes = ov + np.random.default_rng(seed).integers(0, 30, len(ov))
    jac = ov / np.maximum(size + sizes - ov, 1.0)
    expected = np.sort(jac)[-k:].sum() / k
    assert degsim(ov, float(size), sizes, k) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_consensus_corr_is_high_for_the_item_means_and_undefined_when_flat():
    means = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    n = np.full(5, 101.0)
    agree = consensus_corr(means, means * n, n, 3.0)  # ratings equal to the (leave-one-out) item means
    oppose = consensus_corr(means[::-1].copy(), means * n, n, 3.0)
    assert agree > 3.0 and oppose < -3.0
    assert math.isnan(consensus_corr(np.full(5, 3.0), means * n, n, 3.0))
    assert math.isnan(consensus_corr(means[:2], means[:2] * 3, np.full(2, 3.0), 3.0))


def test_robust_fit_uses_the_mad_and_optionally_the_lower_tail():
    values = np.array([0.0, 1.0, 2.0, 3.0, 100.0, np.nan])
    assert robust_fit(values, 0.01) == (2.0, pytest.approx(1.4826))
    assert robust_fit(np.array([]), 0.5) == (0.0, 0.5)
    skewed = np.r_[np.zeros(20), np.full(80, 10.0)]  # MAD 0, but a fifth of the population sits far below
    med, scale = robust_fit(skewed, 1e-3, lower_tail=True)
    assert med == 10.0 and scale == pytest.approx(10.0 / 1.2816)


def test_the_score_is_one_half_exactly_where_the_rule_fires():
    two_kinds = margins({"lam": 0.5, "t": 3.0, "sim_z": 2.0, "cons_z": -1.0}, CFG)
    assert two_kinds["selection"] == two_kinds["similarity"] == 1.0 and is_lenient(two_kinds)
    score, reasons = decide(two_kinds, -1.0, [], [], CFG)
    assert score == 0.5 and reasons == ["uniform_item_choice", "unlike_all_neighbours"]
    one_kind = margins({"lam": 1.0, "t": 9.0, "sim_z": 0.0, "cons_z": 0.0}, CFG)
    assert decide(one_kind, 0.0, [], [], CFG)[0] < 0.5  # one strong kind alone never flags
    score, reasons = decide(one_kind, 0.0, ["t1|1", "t2|-1"], [], CFG)
    assert score == 0.5 and reasons == ["uniform_item_choice", "pushes_target:t1", "nukes_target:t2"]
    score, reasons = decide({}, 0.0, [], [("x", 0.9)], CFG)
    assert score == pytest.approx(1.8**4 / (1 + 1.8**4)) and reasons == ["buys_target:x"]
    too_average = margins({"lam": 0.0, "t": 0.0, "sim_z": 2.5, "cons_z": 4.0}, CFG)
    assert decide(too_average, 4.0, [], [], CFG)[1] == ["unlike_all_neighbours", "too_average"]
    assert not is_lenient(margins({"lam": 0.2, "t": 1.0, "sim_z": 1.0}, CFG)) and not is_lenient({})


def _table(rows: list[tuple[str, int, float | None, bool]]) -> ItemTable:
    """An item table from (item, user index, rating or None, bought) rows."""
    t = ItemTable()
    for item, user, rating, bought in rows:
        k = t.slot(item)
        t.arr["actors"][k] += 1
        t.raters[k].append(user)
        if rating is not None:
            t.rate(k, float("nan"), rating)
        if bought:
            t.arr["buyers"][k] += 1
    return t


def test_a_campaign_target_needs_lenient_pushers_against_the_consensus():
    rows = [("t", u, 5.0, False) for u in range(12)] + [("t", 100 + u, 2.0, False) for u in range(6)]
    rows += [("x", 200 + u, float(1 + u % 5), False) for u in range(50)]
    table = _table(rows)
    lenient = np.arange(12)
    found = campaign_targets(CFG, table, [[["t", 1]]] * 12, lenient, (1.0, 5.0))
    assert set(found) == {"t|1"} and found["t|1"][:2] == [12, 12] and found["t|1"][3] == "lenient"
    assert found["t|1"][2] >= CFG.target_z
    assert campaign_targets(CFG, table, [[["t", 1]]] * 9, lenient[:9], (1.0, 5.0)) == {}  # fewer than 10 pushers
    liked = _table([("t", u, 5.0, False) for u in range(12)] + [("t", 100 + u, 5.0, False) for u in range(6)])
    assert campaign_targets(CFG, liked, [[["t", 1]]] * 12, lenient, (1.0, 5.0)) == {}  # everyone loves it


def test_a_purchase_target_is_bought_by_most_who_touch_it():
    rows = [("t", u, None, u < 11) for u in range(12)]  # 11 of 12 visitors buy
    rows += [(f"i{k}", 100 + u, None, u == 0) for k in range(40) for u in range(25)]  # 1 in 25 elsewhere
    table = _table(rows)
    found = purchase_targets(CFG, table, ["t", "i0"])
    assert set(found) == {"t|1"} and found["t|1"][:2] == [11, 12] and found["t|1"][3] == "purchase"


def test_a_swarmed_item_has_far_more_newcomers_than_the_items_of_its_popularity():
    actors = np.arange(10.0, 70.0)
    newcomers = np.round(0.6 * actors)
    swarmed = newcomers.copy()
    swarmed[30] = 38.0  # 40 actors, 38 of them newcomers, where items this popular have 24
    found = swarmed_items(CFG, actors, swarmed)
    assert set(found) == {30} and found[30] >= CFG.target_z
    assert swarmed_items(CFG, actors, newcomers) == {}
    assert swarmed_items(CFG, actors, np.round(0.95 * actors)) == {}  # newcomers everywhere: nothing stands out
    assert swarmed_items(CFG, np.array([9.0, 200.0, 300.0]), np.array([9.0, 20.0, 30.0])) == {}  # under target_min


def test_a_popular_item_is_compared_with_popular_items_not_with_the_whole_catalogue():
    # light users favour popular items: the newcomer share rises with log popularity, and the head is
    # steep, so the head items' shares, far above the catalogue's and their window's mean, are normal
    actors = np.round(3000.0 / np.arange(300, 0, -1) ** 0.8)
    newcomers = np.round((0.3 + 0.08 * np.log(actors)) * actors)
    order = np.argsort(actors)
    window = order[-21:-1]  # the 20 items ranked just below the top one
    pooled = newcomers[window].sum() / actors[window].sum()
    top = order[-1]
    assert newcomers[top] - actors[top] * pooled > 4 * np.sqrt(actors[top] * pooled * (1 - pooled))  # a mean: z > 4
    assert swarmed_items(CFG, actors, newcomers) == {}
    swarmed = newcomers.copy()
    swarmed[order[-3]] = actors[order[-3]]  # the third most popular item, every actor a newcomer
    assert set(swarmed_items(CFG, actors, swarmed)) == {int(order[-3])}


def test_states_round_trip_through_json():
    u = UserState(5.0)
    u.items = {"a": 4.0, "b": float("nan")}
    u.bought = {"b": 2}
    u.feats = {"size": 2.0, "cons": float("nan")}
    again = UserState.from_dict(json.loads(json.dumps(u.to_dict())))
    assert again.to_dict() == u.to_dict() and math.isnan(again.items["b"])
    table = _table([("a", 0, 4.0, False), ("a", 1, 2.0, True), ("b", 1, None, False)])
    back = ItemTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert back.to_dict() == table.to_dict() and back.at_value(0, 4.0) == 1 and back.raters == [[], []]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40), st.booleans()), max_size=300))
def test_the_raters_of_items_are_their_rater_lists_whatever_was_asked_before(steps):
    """`raters_of` copies each item's raters into an array with room to grow: asked between
    additions, with any items, it gives exactly the rater lists as they stand."""
    table = ItemTable()
    for item in range(6):
        table.slot(str(item))
    for item, user, ask in steps:
        table.raters[item].append(user)
        if ask:
            slots = [item, (item + 1) % 6, item]
            expected = [r for k in slots for r in table.raters[k]]
            assert table.raters_of(slots).tolist() == expected
    assert table.raters_of(list(range(6))).tolist() == [r for rs in table.raters for r in rs]
