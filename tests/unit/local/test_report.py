"""The demo report's arithmetic, on hand-made facts."""

from __future__ import annotations

import math

import pytest

from streams.local.report import freshness_seconds, histogram_quantile, percentiles


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
