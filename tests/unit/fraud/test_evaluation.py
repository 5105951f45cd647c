"""Offline evaluation: labels, hiding who is who, clipping, end-of-replay and streaming metrics by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from streams.fraud.evaluation import (
    SYNTHETIC_T0,
    Replay,
    anonymize,
    best_f1,
    clip_to_genuine_scale,
    detection_scores,
    evaluate,
    prepare,
    read_labels,
    streaming_metrics,
)
from streams.sources.attacks import AttackSpec
from tests.unit.conftest import make_ratings


def test_read_labels_numbers_words_and_separators(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_text("1 0\n2\t1\n\n3 1 bandwagon\nuser label\n4,fraud\n5 genuine\n")
    assert read_labels(p) == {"1": 0, "2": 1, "3": 1, "4": 1, "5": 0}


def test_detection_scores_by_hand():
    users = [f"u{k}" for k in range(10)]
    attackers = {"u0": "random", "u1": "random", "u2": "average", "u3": "average"}
    m = detection_scores({"u0", "u1", "u2", "u9"}, users, attackers)
    assert (m["precision"], m["recall"], m["fpr"], m["users"], m["attackers"]) == (0.75, 0.75, round(1 / 6, 4), 10, 4)
    assert m["f1"] == 0.75
    assert m["per_attack"]["random"] == {"precision": round(2 / 3, 4), "recall": 1.0, "f1": 0.8}
    assert m["per_attack"]["average"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert detection_scores(set(), {"a", "b"}, {"a": "attack"})["f1"] == 0.0


def test_anonymize_gives_everyone_opaque_ids_in_time_order():
    frame = pd.DataFrame(
        {"user": ["b", "a", "b", "atk1"], "item": ["1", "2", "3", "1"], "rating": [4.0, 3.0, 5.0, 5.0]}
    ).assign(timestamp=[30.0, 10.0, 20.0, 15.0], type="rating")
    out, mapping = anonymize(frame, seed=3)
    assert set(mapping) == {"a", "b", "atk1"} and len(set(mapping.values())) == 3
    assert all(len(u) == 12 and int(u, 16) >= 0 for u in out["user"])
    assert out["timestamp"].tolist() == [10.0, 15.0, 20.0, 30.0]
    assert out["user"].tolist() == [mapping[u] for u in ["a", "atk1", "b", "b"]]
    again, _ = anonymize(frame, seed=3)
    assert again.equals(out) and anonymize(frame, seed=4)[1] != mapping
    retimed, _ = anonymize(frame.assign(timestamp=np.nan), seed=3, retime=True)
    assert sorted(retimed["timestamp"] - SYNTHETIC_T0) == [0.0, 1.0, 2.0, 3.0]


def test_files_without_timestamps_get_one_seeded_order_for_all_rows_injected_ones_too():
    ratings = make_ratings(60, 100, seed=2, with_ts=False)
    data = prepare(ratings, inject=[AttackSpec("random", 0.1, 0.05)], seed=5)
    assert data.retimed and len(data.attackers) == 6
    ts = data.frame["timestamp"].to_numpy()
    assert (np.diff(ts) == 1.0).all()  # one permutation of all rows, 1 s apart
    rank = np.flatnonzero(data.frame["user"].isin(data.attackers).to_numpy())
    assert rank.mean() == pytest.approx(len(ts) / 2, rel=0.2)  # attackers are spread, not appended at the end


def test_labelled_attackers_are_clipped_to_the_genuine_scale():
    frame = pd.DataFrame(
        {"user": ["g", "g", "x", "x"], "item": ["1", "2", "1", "3"], "rating": [0.5, 4.0, 5.0, 0.0], "timestamp": 0.0}
    )
    out = clip_to_genuine_scale(frame, {"x"})
    assert out["rating"].tolist() == [0.5, 4.0, 4.0, 0.5] and frame["rating"].tolist()[2] == 5.0
    labels = {"x": 1, "g": 0}
    data = prepare(frame.assign(timestamp=[1.0, 2.0, 3.0, 4.0]), labels, seed=0)
    assert data.frame["rating"].max() == 4.0 and list(data.attackers.values()) == ["labelled"]


def _replay(users, flagged, batch, close_ts, ts, events_at_close):
    n = len(users)
    return Replay(
        np.array(users, dtype=object),
        np.array(ts, float),
        np.array(batch),
        np.array(flagged, bool),
        np.zeros(n),
        np.array(events_at_close),
        np.zeros(n),
        np.zeros(n, bool),
        np.array(close_ts, float),
        set(),
        {},
        0.0,
        0.0,
        0.0,
    )


def test_streaming_metrics_by_hand():
    # batch 0 closes at t=10: a (2 events) not yet flagged, g flagged; batch 1 closes at t=30: a flagged, b never
    rep = _replay(
        users=["a", "a", "g", "b", "a", "b", "g"],
        flagged=[0, 0, 1, 0, 1, 0, 0],
        batch=[0, 0, 0, 1, 1, 1, 1],
        close_ts=[10.0, 30.0],
        ts=[1.0, 2.0, 10.0, 20.0, 25.0, 28.0, 30.0],
        events_at_close=[2, 2, 1, 1, 3, 2, 2],
    )
    s = streaming_metrics(rep, {"a", "b"})
    # pairs: (a,0) missed, (g,0) false flag, (b,1) missed, (a,1) hit, (g,1) fine
    assert (s["precision"], s["recall"]) == (0.5, round(1 / 3, 4))
    assert s["attacker_events_flagged_at_close"] == 0.2 and s["genuine_events_flagged_at_close"] == 0.5
    assert s["attackers_never_flagged"] == 1
    assert s["median_events_to_flag"] is None  # a: 3 events; b: never (counts as infinitely late)
    only_a = streaming_metrics(rep, {"a"})
    assert only_a["median_events_to_flag"] == 3.0 and only_a["median_seconds_to_flag"] == 29.0


def test_best_f1_is_the_label_chosen_optimum():
    assert best_f1({"a": 0.9, "g": 0.8, "b": 0.7, "h": 0.1}, {"a", "b"}) == 0.8
    assert best_f1({"a": 0.1}, set()) == 0.0


def test_evaluate_reports_end_streaming_and_gate_and_is_deterministic(ml_slice):
    specs = [AttackSpec("random", 0.05, 0.03)]
    out = evaluate(ml_slice, inject=specs, seed=2)
    assert out["users"] == 315 and out["attackers"] == 15 and set(out["per_attack"]) == {"random"}
    assert out["f1"] >= 0.9 and out["fpr"] <= 0.01
    assert out["streaming"]["attacker_events_flagged_at_close"] > 0.5 and out["streaming"]["precision"] > 0.9
    assert out["trust_gate"]["attacker_events_kept_out"] >= 0.9
    assert evaluate(ml_slice, inject=specs, seed=2) == out
