"""Each profile feature, MinHash and the combiner against numbers computed by hand on tiny inputs."""

from __future__ import annotations

import math

import pytest

from streams.fraud.combiner import CombinerConfig, combine, fit_population, own_evidence, robust_z
from streams.fraud.features import fmtd, length_var, mean_var, pop_low, profile_features, rdma, wda, wdma
from streams.fraud.minhash import LSHIndex, MinHasher, jaccard
from streams.fraud.state import UserState

# item -> (NR_i, r̄_i);  user rated a = 5 and b = 2.
ITEMS = {"a": (2, 3.0), "b": (4, 4.0)}
PROFILE = {"a": 5.0, "b": 2.0}


def test_rdma():
    assert rdma(PROFILE, ITEMS) == pytest.approx((2 / 2 + 2 / 4) / 2)  # 0.75


def test_wdma():
    assert wdma(PROFILE, ITEMS) == pytest.approx((2 / 4 + 2 / 16) / 2)  # 0.3125


def test_wda():
    assert wda(PROFILE, ITEMS) == pytest.approx(1.5)


def test_length_var():
    assert length_var(10, 6.0, 32.0) == pytest.approx(0.125)
    assert length_var(3, 3.0, 0.0) == 0.0


def test_mean_var_and_fmtd_split_target_from_filler():
    assert mean_var(PROFILE, ITEMS) == pytest.approx(4.0)  # filler {b}: (2 − 4)²
    assert mean_var(PROFILE, ITEMS, push=False) == pytest.approx(4.0)  # filler {a}: (5 − 3)²
    assert fmtd(PROFILE) == pytest.approx(3.0)
    three = {"a": 5.0, "b": 2.0, "c": 5.0}
    assert fmtd(three) == pytest.approx(3.0)
    assert fmtd({"a": 4.0, "b": 4.0}) == 0.0


def test_pop_low():
    assert pop_low([2, 4]) == pytest.approx(-1.5 * math.log(2))


def test_profile_features_agree_with_the_single_formulas():
    f = profile_features(PROFILE, ITEMS, mean_len=6.0, sum_sq_dev=32.0)
    assert f == pytest.approx(
        {
            "rdma": 0.75,
            "wdma": 0.3125,
            "wda": 1.5,
            "length_var": 4 / 32,
            "mean_var": 4.0,
            "fmtd": 3.0,
            "pop_low": -1.5 * math.log(2),
        }
    )


def test_user_state_timing_features():
    st = UserState()
    for ts in (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0):
        st.observe(ts, half_life=300.0)
    b = st.behaviour()
    assert st.gap_n == 8 and st.gap_mean == pytest.approx(10.0)
    assert b["regularity"] == pytest.approx(-math.log(0.01))  # CV 0: machine-regular
    assert b["new_intensity"] == 9.0
    two = UserState()
    two.observe(0.0, 300.0)
    two.observe(300.0, 300.0)
    assert two.peak == pytest.approx(1.5)  # 1 halved over one half-life, plus 1


def test_user_state_round_trips_through_a_dict():
    st = UserState(5.0)
    st.observe(5.0, 300.0)
    st.ratings["x"] = 4.0
    assert UserState.from_dict(st.to_dict()).to_dict() == st.to_dict()


def test_fit_population_median_and_mad():
    rows = [{"pop_low": v} for v in (1.0, 2.0, 3.0, 4.0, 100.0)]
    assert fit_population(rows)["pop_low"] == pytest.approx([3.0, 1.4826])
    assert fit_population([{"pop_low": 2.0}] * 3)["pop_low"] == [2.0, 0.05]  # floored scale


def test_robust_z_direction_log_and_shrinkage():
    pop = {"pop_low": [-5.0, 0.5], "degsim": [0.3, 0.1], "rdma": [math.log(0.01), 1.0]}
    z = robust_z({"pop_low": -4.0, "degsim": 0.1, "rdma": 0.01 * math.e}, pop)
    assert z == pytest.approx({"pop_low": 2.0, "degsim": 2.0, "rdma": 1.0})
    cfg = CombinerConfig(prior_ratings=10.0)
    assert robust_z({"pop_low": -4.0}, pop, n_ratings=10, cfg=cfg)["pop_low"] == pytest.approx(1.0)


def test_combine_score_and_reasons():
    cfg = CombinerConfig()
    z = {"rdma": 4.0, "wdma": 4.0, "pop_low": 4.0, "degsim": 4.0, "burst": 0.0}
    assert own_evidence(z, cfg) == pytest.approx(4.0)
    score, ev, reasons = combine(z, {}, cfg)
    assert ev == pytest.approx(4.0)
    assert score == pytest.approx(1 / (1 + math.exp(-2.0 * 0.5)))
    assert reasons == ["degsim_low", "rdma_high", "unpopular_items", "wdma_high"]
    # a suspicious-ish user pushing a marked target gets the group bonus and its reason
    z2 = {"rdma": 2.5, "wdma": 2.5, "pop_low": 2.5, "degsim": 2.5}
    s2, ev2, r2 = combine(z2, {"cotarget_push": 6.0}, cfg)
    assert ev2 == pytest.approx(4.5) and r2 == ["cotarget_push"] and s2 > 0.5
    # ... but a clean user pushing the same item does not
    s3, ev3, r3 = combine({"rdma": 0.5}, {"cotarget_push": 6.0}, cfg)
    assert ev3 == pytest.approx(0.125) and r3 == [] and s3 < 0.01


def test_minhash_estimates_jaccard():
    a = {f"i{k}" for k in range(0, 100)}
    b = {f"i{k}" for k in range(50, 150)}
    assert jaccard(a, b) == pytest.approx(50 / 150)
    h = MinHasher(num_perm=256, seed=3)
    est = float((h.signature(a) == h.signature(b)).mean())
    assert abs(est - 1 / 3) < 0.1
    assert (h.signature(sorted(a)) == h.signature(a)).all()


def test_lsh_finds_near_duplicates_first():
    h = MinHasher(128, seed=1)
    idx = LSHIndex(128)
    base = {f"i{k}" for k in range(40)}
    idx.update(0, h.signature(base))
    idx.update(1, h.signature(base | {"x"}))
    idx.update(2, h.signature({f"j{k}" for k in range(40)}))
    assert idx.query(0)[0] == 1 and 2 not in idx.query(0)
    assert idx.similarity(0, [1])[0] > 0.8
    idx.update(1, h.signature({f"j{k}" for k in range(40)}))  # replaced signature moves buckets
    assert 1 not in idx.query(0)
