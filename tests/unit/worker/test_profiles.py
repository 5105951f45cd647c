"""The profile update rule, against hand-computed values."""

from __future__ import annotations

import math

import msgspec

from streams.worker.profiles import ProfileCache, ProfileConfig, UserProfile

CONFIG = ProfileConfig(recent_items=3, recent_event_ids=4, rate_half_life_s=10.0)


def apply(profile, n, item, kind="rating", ts=0.0, value=None, partition=None, offset=None):
    """Apply event e{n} unless `seen_before` knows it, as the ingest batch does; True if applied."""
    if profile.seen_before(f"e{n}", partition, offset) is not None:
        return False
    profile.apply(f"e{n}", item, kind, ts, value, CONFIG, partition, offset)
    return True


def test_counts_first_last_seen_and_recent_items():
    p = UserProfile("u")
    apply(p, 1, "a", "click", ts=100.0)
    apply(p, 2, "b", "purchase", ts=90.0, value=9.99)  # out of order: first_seen moves back
    apply(p, 3, "a", "click", ts=120.0)
    apply(p, 4, "c", "click", ts=130.0)
    apply(p, 5, "d", "click", ts=140.0)
    assert p.counts == {"click": 4, "purchase": 1, "rating": 0}
    assert p.events == 5
    assert (p.first_seen, p.last_seen) == (90.0, 140.0)
    assert list(p.recent_items) == ["a", "c", "d"]  # most recent last, bounded to 3, 'a' moved up
    assert p.distinct_items == 4


def test_rating_mean_and_variance_are_welford_exact():
    p = UserProfile("u")
    for n, rating in enumerate([2.0, 4.0, 4.0, 5.0]):
        apply(p, n, f"i{n}", "rating", value=rating)
    apply(p, 9, "x", "click")  # clicks do not move rating statistics
    assert p.rating_count == 4
    assert math.isclose(p.rating_mean, 3.75)
    assert math.isclose(p.rating_variance, ((2 - 3.75) ** 2 + 2 * (4 - 3.75) ** 2 + (5 - 3.75) ** 2) / 4)


def test_event_rate_ewma_halves_every_half_life():
    p = UserProfile("u")
    apply(p, 1, "a", ts=0.0)
    step = math.log(2) / 10.0
    assert math.isclose(p.rate_ewma, step)
    apply(p, 2, "b", ts=10.0)  # one half-life later: old mass halves, new event adds a step
    assert math.isclose(p.rate_ewma, step / 2 + step)


def test_event_rate_of_a_steady_stream_converges_to_that_rate():
    p = UserProfile("u")
    for n in range(2000):
        apply(p, n, f"i{n % 5}", ts=n * 0.5)  # 2 events per second
    assert math.isclose(p.rate_ewma, 2.0, rel_tol=0.05)


def test_replayed_record_changes_nothing():
    p = UserProfile("u")
    assert apply(p, 1, "a", ts=1.0, partition=0, offset=5)
    before = p.snapshot()
    assert not apply(p, 99, "b", ts=2.0, partition=0, offset=5)  # same partition/offset
    assert not apply(p, 98, "b", ts=2.0, partition=0, offset=3)  # older offset
    assert p.snapshot() == before
    assert apply(p, 2, "b", ts=2.0, partition=1, offset=3)  # another partition has its own watermark
    assert p.seen_before("e77", partition=0, offset=5) == "redelivered"
    assert p.seen_before("e2", partition=0, offset=6) == "resent"
    assert p.seen_before("e77", partition=0, offset=6) is None


def test_resent_event_id_changes_nothing_and_the_id_window_is_bounded():
    p = UserProfile("u")
    apply(p, 1, "a")
    assert not apply(p, 1, "a")
    for n in range(2, 7):
        apply(p, n, "a")
    assert list(p.recent_event_ids) == ["e3", "e4", "e5", "e6"]
    assert p.events == 6


def test_distinct_items_stop_growing_at_the_cap():
    config = ProfileConfig(max_tracked_items=3)
    p = UserProfile("u")
    for n in range(5):
        p.apply(f"e{n}", f"i{n}", "click", 0.0, None, config)
    assert p.distinct_items == 3 and p.items_capped


def test_dict_round_trip_and_public_view():
    p = UserProfile("u")
    apply(p, 1, "a", "rating", ts=5.0, value=4.0, partition=2, offset=7)
    q = UserProfile.restore(p.snapshot())
    assert q == p
    view = q.view()
    assert view["counts"] == {"click": 0, "purchase": 0, "rating": 1}
    assert view["rating_mean"] == 4.0 and "offsets" not in view and "recent_event_ids" not in view


def _written(cache, key, profile):
    stored = msgspec.json.encode(profile.snapshot())
    cache.wrote(key, stored, profile)
    return stored


def test_the_cache_hands_back_the_written_profile_while_the_table_holds_its_bytes():
    cache = ProfileCache(capacity=10)
    profile = UserProfile("u")
    apply(profile, 1, "a", "click", ts=1.0, partition=0, offset=5)
    stored = _written(cache, b"u", profile)
    assert cache.load(b"u", stored, msgspec.json.decode) is profile
    assert cache.load(b"v", None, msgspec.json.decode) is None


def test_equal_bytes_that_are_not_the_written_object_are_decoded_afresh():
    # Changelog recovery stores new bytes objects: the table may no longer hold what this worker wrote.
    cache = ProfileCache(capacity=10)
    profile = UserProfile("u")
    apply(profile, 1, "a", "click", ts=1.0)
    stored = _written(cache, b"u", profile)
    recovered = bytes(bytearray(stored))
    assert recovered == stored and recovered is not stored
    loaded = cache.load(b"u", recovered, msgspec.json.decode)
    assert loaded is not profile and loaded.snapshot() == profile.snapshot()
    newer = UserProfile("u")  # another owner wrote a newer profile while this one was away
    apply(newer, 2, "b", "purchase", ts=2.0)
    assert cache.load(b"u", msgspec.json.encode(newer.snapshot()), msgspec.json.decode).snapshot() == newer.snapshot()


def test_the_cache_drops_the_profiles_written_longest_ago_first():
    cache = ProfileCache(capacity=2)
    profiles = {key: UserProfile(key.decode()) for key in (b"a", b"b", b"c")}
    stored = {key: _written(cache, key, profiles[key]) for key in (b"a", b"b")}
    stored[b"a"] = _written(cache, b"a", profiles[b"a"])  # written again: now the newest
    stored[b"c"] = _written(cache, b"c", profiles[b"c"])
    assert len(cache) == 2
    assert cache.load(b"b", stored[b"b"], msgspec.json.decode) is not profiles[b"b"]
    assert all(cache.load(key, stored[key], msgspec.json.decode) is profiles[key] for key in (b"a", b"c"))
    nothing = ProfileCache(capacity=0)
    _written(nothing, b"a", profiles[b"a"])
    assert len(nothing) == 0
