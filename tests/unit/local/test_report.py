"""The demo report's arithmetic, on hand-made facts."""

from __future__ import annotations

import math

import pytest

from streams.local.report import (
    attack_round,
    attack_rows_trained,
    exposure_over_time,
    exposure_verdict,
    flags_over_time,
    freshness_seconds,
    histogram_quantile,
    percentiles,
    target_exposure,
)


def test_freshness_uses_the_first_version_trained_on_or_after_the_round():
    arrivals = {1: [100.0, 110.0], 2: [150.0], 3: [190.0]}
    round_of_version = {1: 1, 2: 2, 3: 3}
    # version 2 (round 2) was rejected, never served; version 3 serves first at 200
    first_served = {1: 130.0, 3: 200.0}
    fresh = freshness_seconds(arrivals, round_of_version, first_served)
    assert sorted(fresh.tolist()) == [10.0, 20.0, 30.0, 50.0]  # 130-110, 130-100, 200-190, 200-150


def test_percentiles_and_empty():
    assert percentiles(__import__("numpy").array([])) == {"p50": None, "p95": None}
    values = __import__("numpy").arange(1, 101, dtype=float)
    assert percentiles(values)["p50"] == pytest.approx(50.5)


def test_histogram_quantile_interpolates_inside_a_bucket():
    samples = {
        'lat_bucket{le="0.01"}': 50.0,
        'lat_bucket{le="0.1"}': 100.0,
        'lat_bucket{le="+Inf"}': 100.0,
        "lat_count": 100.0,
    }
    assert histogram_quantile(0.5, samples, "lat") == pytest.approx(0.01)
    assert histogram_quantile(0.75, samples, "lat") == pytest.approx(0.055)
    assert histogram_quantile(0.5, {'lat_bucket{le="+Inf"}': 0.0}, "lat") is None
    assert math.isclose(histogram_quantile(0.99, {'x_bucket{le="1"}': 0.0, 'x_bucket{le="+Inf"}': 5.0}, "x"), 1.0)


def _answer(pipeline, user, items, version, served_at=0.0, source=None):
    answer = {"pipeline": pipeline, "user_id": user, "items": items, "model_version": version, "served_at": served_at}
    return answer if source is None else {**answer, "source": source}


def test_attack_round_is_the_first_round_that_took_an_attack_period_batch():
    rounds = {1: [90.0, 95.0], 2: [99.0], 3: [101.0, 98.0], 4: [120.0]}
    assert attack_round(rounds, 100.0) == 3
    assert attack_round(rounds, 200.0) is None
    assert attack_round(rounds, None) is None


def test_target_exposure_splits_lists_by_the_round_that_served_them():
    genuine = {"g1", "g2"}
    rounds = {"defended": {1: 1, 2: 2}, "undefended": {1: 1, 2: 2, 3: 3}}
    onset = {"defended": 2, "undefended": 2}
    answers = [
        _answer("defended", "g1", ["a", "b"], 1, served_at=1.0),  # before: no target
        _answer("undefended", "g2", ["t", "b"], 1, served_at=1.0),  # before: target
        _answer("defended", "g1", ["t"] + ["x"] * 10, 0, served_at=1.0),  # popularity, before the onset
        _answer("defended", "g2", ["b"], 0, served_at=3.0),  # popularity, after the attack's first event
        _answer("undefended", "att", ["t"], 3),  # an attacker's list: left out
        _answer("undefended", "g1", ["t", "a"], 2, served_at=5.0, source="profile"),
        _answer("undefended", "g2", ["b", "t"], 3, served_at=6.0),
        _answer("undefended", "g2", ["b", "c"], 3, served_at=6.0),
        _answer("defended", "g1", ["b", "c"], 2, served_at=7.0),
        _answer("defended", "g2", ["x"] * 10 + ["t"], 2, served_at=7.0),  # target at rank 11: not in the top 10
    ]
    got = target_exposure(answers, ["t"], genuine, rounds, onset, attack_start=2.0)
    assert got["before_attack"] == pytest.approx(2 / 3)
    assert got["undefended"] == pytest.approx(2 / 3)
    assert got["defended"] == 0.0
    assert got["lists"] == {"before_attack": 3, "undefended": 3, "defended": 3}
    # which path showed the target after the attack (an answer without a source: by its version)
    assert got["with_target_by_source"] == {"undefended": {"profile": 1, "model": 1}, "defended": {}}


def test_a_pre_attack_model_the_gate_kept_serving_counts_after_the_attack():
    rounds = {"defended": {1: 1}, "undefended": {1: 1, 2: 2}}
    onset = {"defended": 2, "undefended": 2}
    answers = [
        _answer("defended", "g", ["a"], 1, served_at=10.0),  # before the attack could reach any list
        _answer("undefended", "g", ["t"], 2, served_at=20.0),  # the first poisoned list
        _answer("defended", "g", ["a"], 1, served_at=21.0),  # v1 kept by the gate: after the attack
        _answer("defended", "g", ["t"], 1, served_at=22.0),
    ]
    got = target_exposure(answers, ["t"], {"g"}, rounds, onset)
    assert got["lists"] == {"before_attack": 1, "undefended": 1, "defended": 2}
    assert got["before_attack"] == 0.0 and got["undefended"] == 1.0 and got["defended"] == 0.5
    assert got["with_target_by_source"] == {"undefended": {"model": 1}, "defended": {"model": 1}}


def test_target_exposure_without_an_attack_round_counts_everything_as_before():
    answers = [_answer("defended", "g", ["t"], 1), _answer("undefended", "g", ["a"], 1)]
    got = target_exposure(answers, ["t"], {"g"}, {"defended": {1: 1}, "undefended": {1: 1}}, {})
    assert got["before_attack"] == 0.5 and got["undefended"] is None and got["defended"] is None


def test_exposure_verdict_applies_the_bar():
    holds = exposure_verdict({"before_attack": 0.01, "undefended": 0.2, "defended": 0.02})
    assert holds["attack_bites"] and holds["defence_holds"]
    assert holds["undefended_lift"] == pytest.approx(0.19) and holds["defended_lift"] == pytest.approx(0.01)
    leaks = exposure_verdict({"before_attack": 0.01, "undefended": 0.2, "defended": 0.05})
    assert leaks["attack_bites"] and not leaks["defence_holds"]
    weak = exposure_verdict({"before_attack": 0.05, "undefended": 0.2, "defended": 0.05})
    assert not weak["attack_bites"] and weak["defence_holds"]
    assert exposure_verdict({"before_attack": None, "undefended": 0.2, "defended": 0.0})["attack_bites"] is None


def test_exposure_over_time_bins_each_pipeline():
    answers = [
        _answer("defended", "g", ["t"], 1, served_at=100.0),
        _answer("defended", "g", ["a"], 1, served_at=104.0),
        _answer("defended", "g", ["t"], 1, served_at=111.0),
        _answer("undefended", "g", ["t"], 1, served_at=101.0),
        _answer("undefended", "g", ["t"], 0, served_at=102.0),  # popularity: left out
    ]
    got = exposure_over_time(answers, ["t"], {"g"}, t0=100.0, bin_s=5.0)
    assert got == {"defended": [(0.0, 0.5), (10.0, 1.0)], "undefended": [(0.0, 1.0)]}


def test_flags_over_time_follows_flags_and_clears():
    flags = [(102.0, "a1", True), (103.0, "g1", True), (104.5, "g1", False), (105.0, "a2", True)]
    got = flags_over_time(flags, {"a1", "a2"}, t0=100.0, t_end=106.0, step_s=2.0)
    assert got == [(0.0, 0, 0), (2.0, 1, 0), (4.0, 1, 1), (6.0, 2, 0)]


def test_attack_rows_trained_sums_the_attackers_rows_over_rounds():
    rounds = [{"a1": 3, "g1": 10}, {"a1": 2, "a2": 5, "g2": 4}, {}]
    got = attack_rows_trained(rounds, {"a1", "a2", "a3"}, attacker_events=40)
    assert got == {"attacker_events": 40, "attacker_rows_trained": 10, "kept_out": 0.75}
    assert attack_rows_trained([{"g1": 5}], {"a1"}, 20)["kept_out"] == 1.0
    # a row trained in two rounds (rejected, then replayed) cannot make the share negative
    assert attack_rows_trained([{"a1": 30}, {"a1": 30}], {"a1"}, 40)["kept_out"] == 0.0
    assert math.isnan(attack_rows_trained([], set(), 0)["kept_out"])
