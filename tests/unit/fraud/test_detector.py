"""The streaming detector on real data: snapshot/restore, no timing signal, seeded end-to-end checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from streams.fraud import DETECTOR_VERSION, DetectorConfig, FraudDetector, Verdict
from streams.fraud.evaluation import detection_scores, events_frame, prepare, replay, streaming_metrics
from streams.sources.attacks import AttackSpec
from streams.sources.simulator import simulated_events


def feed(det: FraudDetector, frame: pd.DataFrame, batch: int = 500, full: bool = True) -> FraudDetector:
    """Replay a prepared frame (already in time order) through a detector, flushing every `batch` events."""
    rows = zip(frame["user"], frame["item"], frame["type"], frame["timestamp"], frame["rating"])
    for n, (u, i, k, ts, v) in enumerate(rows, 1):
        det.update(u, i, k, float(ts), None if v != v else float(v))
        if n % batch == 0:
            det.flush()
    if full:
        det.flush(full=True)
    return det


def verdicts(det: FraudDetector) -> dict:
    return {u: det.score(u).to_dict() for u in det.users}


@pytest.fixture(scope="module")
def average_attack(ml_slice):
    """The 300-user ML-100K slice with a 5 % / 3 % average attack spread over its span (seed 4)."""
    return prepare(ml_slice, inject=[AttackSpec("average", 0.05, 0.03)], seed=4)


def test_an_empty_detector_and_a_short_profile_are_not_flagged():
    det = FraudDetector()
    assert det.flush() == [] and det.score("nobody") == Verdict("nobody", 0.0, False, ())
    assert det.update("u", "i1", "rating", 1.0, 4.0) is None
    for k in range(10):
        det.update("u", f"i{k}", "click", float(k), None)
    assert all(isinstance(v, Verdict) for v in det.flush())
    v = det.score("u")
    assert 0.0 <= v.score < 0.5 and not v.flagged and v.version == DETECTOR_VERSION == "fraud-2"
    assert det.account("u") == (11, 0.0, 9.0) and det.events_of("u") == 11 and det.user_state("x") is None


@pytest.mark.timeout(10)
@pytest.mark.parametrize("n_items", [1, 2])
def test_a_fresh_stream_that_has_seen_one_or_two_items_flushes(n_items):
    # The first batch of an envelope can hold a single event: the selection null must not search
    # for a profile larger than the catalogue seen so far (it once looped forever there).
    det = FraudDetector()
    for k in range(3):
        det.update(f"u{k}", f"i{k % n_items}", "click", float(k), None)
    assert det.flush() == [] and det.flush(full=True) == []
    assert det.null is not None and np.isfinite(det.null.e0).all()


def test_an_average_attack_on_real_data_is_caught_at_the_end_and_mostly_in_the_stream(average_attack):
    det = FraudDetector()
    rep = replay(average_attack.frame, det, 500)
    end = detection_scores(rep.final_flagged, rep.final_scores, average_attack.attackers)
    assert end["attackers"] == 15 and end["f1"] >= 0.9 and end["fpr"] <= 0.01
    stream = streaming_metrics(rep, average_attack.attackers)
    assert stream["attacker_events_flagged_at_close"] > 0.5 and stream["genuine_events_flagged_at_close"] < 0.01
    some = next(u for u in rep.final_flagged if u in average_attack.attackers)
    reasons = det.score(some).reasons
    assert "uniform_item_choice" in reasons or any(r.startswith("pushes_target:") for r in reasons)


def test_update_returns_the_verdict_of_a_user_flagged_now(average_attack):
    det = feed(FraudDetector(), average_attack.frame)
    bad = next(u for u in det.flagged() if u in average_attack.attackers)
    v = det.update(bad, "a-new-item", "rating", 2e9, 3.0)
    assert isinstance(v, Verdict) and v.flagged and v.user_id == bad
    good = next(u for u in det.users if u not in average_attack.attackers and not det.score(u).flagged)
    assert det.update(good, "a-new-item", "rating", 2e9, 3.0) is None


def test_the_reported_score_never_drifts_a_material_move_from_the_live_one(average_attack):
    # A consumer keeps the last verdict `flush` reported. A score that moves by less than `material`
    # at every flush must still be reported once the moves add up to `material` (it was once compared
    # with the previous rescore: reported scores drifted up to 0.36 from the live ones).
    det, reported = FraudDetector(), {}
    frame = average_attack.frame
    rows = zip(frame["user"], frame["item"], frame["type"], frame["timestamp"], frame["rating"])
    for n, (u, i, k, ts, v) in enumerate(rows, 1):
        det.update(u, i, k, float(ts), None if v != v else float(v))
        if n % 100 == 0:
            reported.update((v.user_id, v.score) for v in det.flush())
    reported.update((v.user_id, v.score) for v in det.flush(full=True))
    material = det.config.material
    gaps = {u: (reported.get(u, 0.0), det.score(u).score) for u in det.users}
    assert any(live > 0.0 for _, live in gaps.values())
    drifted = {u: g for u, g in gaps.items() if abs(g[0] - g[1]) >= material}
    assert not drifted, f"user: (last reported, live) at least {material} apart: {drifted}"


def test_snapshot_json_restore_gives_identical_verdicts_and_state(average_attack):
    frame = average_attack.frame
    half = len(frame) // 2 // 500 * 500
    a = feed(FraudDetector(), frame.iloc[:half], full=False)
    b = FraudDetector.restore(json.loads(json.dumps(a.snapshot())))
    assert verdicts(a) == verdicts(b)
    for det in (a, b):
        feed(det, frame.iloc[half:])
    assert verdicts(a) == verdicts(b)
    assert json.dumps(a.snapshot(), sort_keys=True) == json.dumps(b.snapshot(), sort_keys=True)
    with pytest.raises(ValueError, match="snapshot of"):
        FraudDetector.restore({**a.snapshot(), "version": "fraud-1.0"})


def test_verdicts_do_not_depend_on_timestamps(average_attack):
    frame = average_attack.frame
    stretched = frame.assign(timestamp=7.0 * frame["timestamp"] + 123.0)
    a, b = feed(FraudDetector(), frame), feed(FraudDetector(), stretched)
    assert {u: (v["score"], v["flagged"]) for u, v in verdicts(a).items()} == {
        u: (v["score"], v["flagged"]) for u, v in verdicts(b).items()
    }


def test_a_configured_scale_and_threshold_are_used(average_attack):
    det = feed(FraudDetector(DetectorConfig(threshold=0.99, rating_scale=(1.0, 5.0))), average_attack.frame)
    assert det.bounds() == (1.0, 5.0)
    assert all(v.flagged == (v.score >= 0.99) for v in det.verdicts().values())


@pytest.mark.parametrize("kind", ["click_farm", "bot"])
def test_a_click_farm_on_the_simulator_is_caught_by_its_purchases(kind):
    ev = list(simulated_events(n_events=12_000, n_users=800, n_items=500, seed=7))
    frame = events_frame(ev)
    data = prepare(frame, inject=[AttackSpec(kind, 0.05, 0.02)], seed=7)
    det = FraudDetector()
    rep = replay(data.frame, det, 500)
    end = detection_scores(rep.final_flagged, rep.final_scores, data.attackers)
    assert end["attackers"] == round(0.05 * frame["user"].nunique()) and end["f1"] >= 0.9
    some = next(iter(rep.final_flagged & set(data.attackers)))
    assert any(r.startswith("buys_target:") for r in det.score(some).reasons)


def _newcomer_recount(det: FraudDetector) -> list[int]:
    """Per item: actors with fewer than `newcomer_events` events, counted afresh from the profiles."""
    out = [0] * len(det.items)
    for u in det.users.values():
        if u.n_events < det.config.newcomer_events:
            for item in u.items:
                out[det.items.index[item]] += 1
    return out


def test_the_newcomers_of_a_farm_are_marked_with_its_target_and_the_marks_are_kept():
    # a farm of new accounts, filler drawn by popularity (each looks like a light genuine user), one target
    ev = list(simulated_events(n_events=12_000, n_users=800, n_items=500, seed=7))
    frame = events_frame(ev)
    middle, last = ev[len(ev) // 2]["ts"], ev[-1]["ts"]
    spec = AttackSpec(
        "click_farm", 0.15, 0.0, filler_count=(20, 22), filler_choice="popular", start_ts=middle, span_s=last - middle
    )
    data = prepare(frame, inject=[spec], seed=7)
    det = FraudDetector()
    cut = len(data.frame) * 3 // 4 // 500 * 500  # at a batch close, with the farm under way
    replay(data.frame.iloc[:cut], det, 500, final_full=False)
    assert any(det.swarm_of(u) is not None for u in det.users)
    restored = FraudDetector.restore(json.loads(json.dumps(det.snapshot())))
    rebuilt = FraudDetector.from_users(json.loads(json.dumps({u: det.user_state(u) for u in det.users})))
    for d in (det, restored, rebuilt):
        assert d.items.newcomers == _newcomer_recount(d)
        assert {u: d.swarm_of(u) for u in d.users} == {u: det.swarm_of(u) for u in det.users}
        assert set(d.swarms) == set(det.swarms)  # the watched items: snapshotted, or rebuilt from the marks
    rest = data.frame.iloc[cut:]
    # the running detector looks only at the raters a watched item gained since its last flush; the
    # restored one starts by looking at all of them: the same accounts must end marked
    for n, (u, i, k, ts) in enumerate(zip(rest["user"], rest["item"], rest["type"], rest["timestamp"]), 1):
        for d in (det, restored):
            d.update(u, i, k, float(ts), None)
            if n % 500 == 0:
                d.flush()
    det.flush()
    restored.flush()
    assert {u: restored.swarm_of(u) for u in restored.users} == {u: det.swarm_of(u) for u in det.users}
    assert det.items.newcomers == _newcomer_recount(det)
    attackers = set(data.attackers)
    marked = {u: det.swarm_of(u) for u in det.users if det.swarm_of(u) is not None}
    target = data.frame[data.frame["user"].isin(attackers) & (data.frame["type"] == "purchase")]["item"].iloc[0]
    assert len(attackers & marked.keys()) > len(attackers) / 2
    assert {marked[u] for u in attackers & marked.keys()} == {target}
    # every attacker ends established (20+ events); a mark made while it was a newcomer stays
    assert all(det.events_of(u) >= 20 for u in attackers)
    assert len(marked.keys() - attackers) <= 0.02 * len(set(det.users) - attackers)


def test_small_flushes_rotate_no_more_quiet_users_per_event_than_a_flush_of_refresh_events():
    rng = np.random.default_rng(5)
    setup = [(f"u{u}", f"i{i}") for u in range(300) for i in rng.choice(200, 12, replace=False)]
    later = [(f"u{rng.integers(300)}", f"i{rng.integers(200)}") for _ in range(5_000)]

    def rotation_after(flush_every: int) -> int:
        det = FraudDetector()
        for user, item in setup:
            det.update(user, item, "click", 0.0)
        det.flush()
        start = det.rotation
        for n, (user, item) in enumerate(later, 1):
            det.update(user, item, "click", 1.0)
            if n % flush_every == 0:
                det.flush()
        return det.rotation - start

    config = DetectorConfig()
    per_slice = config.refresh_share * 300  # users rescored per flush of `refresh_events` or more
    expected = per_slice * len(later) / config.refresh_events  # 30 users
    assert rotation_after(100) == pytest.approx(expected, abs=1)  # a slice per flush before: 150 users
    assert rotation_after(500) == pytest.approx(expected, abs=1)
    assert rotation_after(1_000) == per_slice * len(later) / 1_000  # one slice per flush, as before


def test_the_rotation_rescores_at_most_refresh_max_per_event_users_per_event_however_many_users():
    rng = np.random.default_rng(6)
    config = DetectorConfig()
    det = FraudDetector(config)
    n_users = 8_000  # 1 % per 500 events would be 0.16 users per event
    for u in range(n_users):
        for i in rng.choice(300, config.min_profile, replace=False):
            det.update(f"u{u}", f"i{i}", "click", 0.0)
    det.flush()
    start = det.rotation
    for n in range(1, 5_001):
        det.update(f"u{rng.integers(n_users)}", f"i{rng.integers(300)}", "click", 1.0)
        if n % config.refresh_events == 0:  # uncapped, one slice of 1 % per flush: 800 users
            det.flush()
    assert det.rotation - start == pytest.approx(config.refresh_max_per_event * 5_000, abs=1)  # credit carried


def test_a_flush_in_steps_is_the_same_flush_with_pauses():
    rng = np.random.default_rng(7)
    det = FraudDetector()
    for u in range(400):
        for i in rng.choice(150, 12, replace=False):
            det.update(f"u{u}", f"i{i}", "rating", 0.0, float(rng.integers(1, 6)))
    snap = det.snapshot()
    at_once, stepped = FraudDetector.restore(snap), FraudDetector.restore(snap)
    expected = at_once.flush(full=True)
    steps, pauses = stepped.flush_steps(full=True, pause_every=8), 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            verdicts = done.value
            break
        pauses += 1
    assert verdicts == expected and stepped.snapshot() == at_once.snapshot()
    assert pauses >= 400 // 8  # at least one pause per 8 users' features
