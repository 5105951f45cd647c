"""The streaming FraudDetector: incremental state, verdicts, snapshot/restore, determinism, detection."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from streams.fraud import DETECTOR_VERSION, FraudDetector, Verdict
from streams.fraud.evaluation import detection_scores, inject_attacks, replay
from streams.sources.attacks import AttackSpec


def feed(det, rows):
    for row in rows:
        det.update(*row)


def test_item_means_and_profile_features_are_incremental():
    det = FraudDetector()
    feed(
        det,
        [
            ("u1", "a", "rating", 1.0, 5.0),
            ("u2", "a", "rating", 2.0, 1.0),
            ("u2", "b", "rating", 3.0, 4.0),
            ("u2", "a", "rating", 4.0, 3.0),
        ],
    )  # u2 re-rates a
    assert det._items == {"a": (2, 4.0), "b": (1, 4.0)}
    assert det._len == [2, 3.0, 5.0]  # two users, N = 1 and 2
    det.flush(full=True)
    assert det.score("u1").features == {}  # below min_profile / min_events: nothing to judge


def test_verdict_features_match_hand_computation():
    det = FraudDetector()
    rows = [
        (u, i, "rating", float(t), r)
        for t, (u, i, r) in enumerate(
            [("u1", f"i{k}", 4.0) for k in range(5)] + [("u2", f"i{k}", 2.0) for k in range(5)]
        )
    ]
    feed(det, rows)
    det.flush(full=True)
    f = det.score("u1").features
    # every item: NR = 2, mean 3; |4 − 3| / 2 = 0.5
    assert f["rdma"] == pytest.approx(0.5) and f["wdma"] == pytest.approx(0.25) and f["wda"] == pytest.approx(2.5)
    assert f["pop_low"] == pytest.approx(-np.log(2))
    assert f["degsim"] == pytest.approx(0.1)  # one neighbour with identical item set, k = 10
    assert f["burst"] > 4.9 and f["new_intensity"] == 5.0


def test_unknown_user_scores_zero():
    v = FraudDetector().score("nobody")
    assert v == Verdict("nobody", 0.0, False, (), {})
    assert v.version == DETECTOR_VERSION and v.to_dict()["reasons"] == []


@pytest.fixture(scope="module")
def attacked(ratings):
    frame, kinds = inject_attacks(ratings, [AttackSpec("random", 0.05, 0.03)], seed=1)
    return frame, kinds


def test_random_attack_is_caught_with_reasons(attacked):
    frame, kinds = attacked
    det = FraudDetector()
    verdicts = replay(frame, det, flush_every=500)
    flagged = {u for u, v in verdicts.items() if v.flagged}
    m = detection_scores(flagged, verdicts, kinds)
    # 12 fillers in a 400-item catalogue is a weak signal: most, not all, attackers are caught here
    assert m["recall"] >= 0.7 and m["precision"] >= 0.9 and m["fpr"] <= 0.02, m
    some = verdicts[next(iter(kinds))]
    assert 0.0 <= some.score <= 1.0 and some.reasons
    assert set(some.reasons) <= {
        "rdma_high",
        "wdma_high",
        "unpopular_items",
        "degsim_low",
        "cotarget_push",
        "burst",
        "regular_timing",
        "new_account_burst",
    }


def test_replay_is_deterministic(attacked):
    frame, _ = attacked
    a = replay(frame, FraudDetector(), flush_every=500)
    b = replay(frame, FraudDetector(), flush_every=500)
    assert {u: (v.score, v.reasons) for u, v in a.items()} == {u: (v.score, v.reasons) for u, v in b.items()}


def test_snapshot_is_json_and_restores_to_the_same_result(attacked):
    frame, _ = attacked
    rows = list(zip(frame["user"], frame["item"], frame["type"], frame["timestamp"], frame["rating"]))
    rows.sort(key=lambda r: r[3])
    half = len(rows) // 2
    whole = FraudDetector()
    feed(whole, rows)
    whole.flush(full=True)
    first = FraudDetector()
    feed(first, rows[:half])
    snap = json.loads(json.dumps(first.snapshot()))
    second = FraudDetector.restore(snap)
    feed(second, rows[half:])
    second.flush(full=True)
    assert {u: (round(v.score, 12), v.reasons) for u, v in second.verdicts().items()} == {
        u: (round(v.score, 12), v.reasons) for u, v in whole.verdicts().items()
    }
    with pytest.raises(ValueError):
        FraudDetector.restore({**snap, "version": "fraud-0"})


def test_update_reports_material_changes_only():
    det = FraudDetector()
    out = [det.update("u", f"i{k}", "click", float(k), None) for k in range(20)]
    assert all(v is None or isinstance(v, Verdict) for v in out)
    flushed = det.flush()
    assert all(isinstance(v, Verdict) for v in flushed)


def test_bots_and_click_farms_are_caught_on_a_click_stream():
    rng = np.random.default_rng(0)
    det = FraudDetector()
    rows = []
    for u in range(200):  # genuine shoppers: irregular gaps, varied items, rare purchases
        t = 1e9 + rng.uniform(0, 86400 * 5)
        for _ in range(int(rng.integers(8, 40))):
            t += rng.exponential(120.0)
            item = f"p{int(rng.zipf(1.5)) % 500}"
            rows.append((f"g{u}", item, "purchase" if rng.random() < 0.05 else "click", t, None))
    for b in range(6):  # bots: one click every 30 s on the same few items
        t = 1e9 + 86400 * 2 + b * 7
        for k in range(40):
            rows.append((f"b{b}", f"p{k % 3}", "click", t + 30.0 * k, None))
    rows.sort(key=lambda r: r[3])
    feed(det, rows)
    det.flush(full=True)
    bots = [det.score(f"b{b}") for b in range(6)]
    assert all(v.flagged and "regular_timing" in v.reasons for v in bots)
    fp = sum(det.score(f"g{u}").flagged for u in range(200))
    assert fp <= 4


def test_core_imports_no_stream_runtime():
    code = (
        "import sys, streams.fraud, streams.sources.attacks, streams.fraud.evaluation; "
        "bad = [m for m in ('faust', 'kafka', 'aiokafka', 'prometheus_client', 'mlflow') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_from_users_rebuilds_the_aggregates_of_the_per_user_states():
    det = FraudDetector()
    feed(
        det,
        [
            ("u1", "a", "rating", 1.0, 5.0),
            ("u2", "a", "rating", 2.0, 1.0),
            ("u2", "b", "rating", 3.0, 4.0),
            ("u2", "a", "rating", 4.0, 3.0),
            ("u3", "c", "click", 5.0, None),
        ],
    )
    states = json.loads(json.dumps({u: det.user_state(u) for u in ("u1", "u2", "u3")}))
    rebuilt = FraudDetector.from_users(states)
    assert rebuilt._items == {"a": (2, 4.0), "b": (1, 4.0)}
    assert rebuilt._len == [2, 3.0, 5.0] and rebuilt._scale == [3.0, 5.0]
    assert rebuilt.events_of("u2") == 3 and rebuilt.events_of("u3") == 1 and rebuilt.events_of("x") == 0
    assert rebuilt.user_state("x") is None


def test_from_users_then_continue_matches_an_uninterrupted_replay(attacked):
    frame, _ = attacked
    rows = sorted(
        zip(frame["user"], frame["item"], frame["type"], frame["timestamp"], frame["rating"]), key=lambda r: r[3]
    )
    half = len(rows) // 2
    whole = FraudDetector()
    feed(whole, rows)
    whole.flush(full=True)
    first = FraudDetector()
    feed(first, rows[:half])
    first.flush()
    second = FraudDetector.from_users({u: first.user_state(u) for u in first.verdicts()})
    feed(second, rows[half:])
    second.flush(full=True)
    a = {u: v.flagged for u, v in whole.verdicts().items()}
    b = {u: v.flagged for u, v in second.verdicts().items()}
    assert a == b  # co-target windows keep only each user's latest bucket: flags, not every digit, agree
