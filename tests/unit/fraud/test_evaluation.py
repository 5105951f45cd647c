"""Offline evaluation: labels, synthetic timestamps, metrics, and the CLI end to end via CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.fraud.evaluation import detection_scores, read_labels, with_synthetic_timestamps
from tests.unit.conftest import make_ratings


def test_read_labels_whitespace_and_tab(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_text("1 0\n2\t1\n\n3 1 bandwagon\nuser label\n")
    assert read_labels(p) == {"1": 0, "2": 1, "3": 1}


def test_detection_scores_by_hand():
    users = [f"u{k}" for k in range(10)]
    attackers = {"u0": "random", "u1": "random", "u2": "average", "u3": "average"}
    m = detection_scores({"u0", "u1", "u2", "u9"}, users, attackers)
    assert (m["precision"], m["recall"], m["fpr"], m["users"], m["attackers"]) == (0.75, 0.75, round(1 / 6, 4), 10, 4)
    assert m["f1"] == 0.75
    assert m["per_attack"]["random"] == {"precision": round(2 / 3, 4), "recall": 1.0, "f1": 0.8}
    assert m["per_attack"]["average"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_synthetic_timestamps_are_a_seeded_shuffle():
    df = make_ratings(20, 80, with_ts=False)
    a = with_synthetic_timestamps(df, 1)["timestamp"].to_numpy()
    assert sorted(a - a.min()) == list(np.arange(len(df), dtype=float))
    assert (a == with_synthetic_timestamps(df, 1)["timestamp"].to_numpy()).all()
    assert not (a == with_synthetic_timestamps(df, 2)["timestamp"].to_numpy()).all()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    df = make_ratings(200, 300, seed=3)
    df[["user", "item", "rating", "timestamp"]].to_csv(d / "ratings.csv", index=False)  # CSV with header
    (d / "labels.txt").write_text("".join(f"{u}\t0\n" for u in df["user"].unique()))
    return d


def test_eval_detection_cli_end_to_end(files):
    runner = CliRunner()
    args = [
        "eval-detection",
        "--ratings",
        str(files / "ratings.csv"),
        "--labels",
        str(files / "labels.txt"),
        "--inject",
        "random:0.05:0.1",
        "--inject",
        "bandwagon:0.05:0.1",
        "--seed",
        "4",
        "--flush-every",
        "500",
    ]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out) == {"precision", "recall", "f1", "fpr", "users", "attackers", "per_attack"}
    assert out["users"] == 220 and out["attackers"] == 20
    assert set(out["per_attack"]) == {"random", "bandwagon"}
    assert out["recall"] >= 0.9 and out["fpr"] <= 0.02
    assert json.loads(runner.invoke(main, args).output) == out  # deterministic with --seed


def test_eval_detection_rejects_a_bad_inject(files):
    res = CliRunner().invoke(
        main, ["eval-detection", "--ratings", str(files / "ratings.csv"), "--inject", "average:5%"]
    )
    assert res.exit_code != 0 and "TYPE:ATTACK_SIZE:FILLER_SIZE" in res.output


def test_attack_cli_writes_events_and_separate_labels(files, tmp_path):
    ev, lab = tmp_path / "events.jsonl", tmp_path / "labels.txt"
    res = CliRunner().invoke(
        main,
        [
            "attack",
            "--ratings",
            str(files / "ratings.csv"),
            "--type",
            "average",
            "--attack-size",
            "0.05",
            "--filler-size",
            "0.03",
            "--seed",
            "2",
            "--out",
            str(ev),
            "--labels-out",
            str(lab),
        ],
    )
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in ev.read_text().splitlines()]
    labels = [line.split() for line in lab.read_text().splitlines()]
    assert len(labels) == 10 and all(y == "1" and k == "average" for _, y, k in labels)
    assert {e["user_id"] for e in events} == {u for u, _, _ in labels}
    assert len(events) == 10 * (1 + 9)  # target + 3% of 300 items
    assert all("label" not in e for e in events)


def test_detection_scores_of_the_demo_case():
    # 2 of 4 attackers flagged, 1 of 5 genuine users flagged
    users = {"a1", "a2", "a3", "a4", "g1", "g2", "g3", "g4", "g5"}
    m = detection_scores({"a1", "a2", "g1"}, users, {a: "attack" for a in ("a1", "a2", "a3", "a4")})
    assert (m["precision"], m["recall"], m["fpr"]) == (round(2 / 3, 4), 0.5, 0.2)
    assert m["f1"] == round(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5), 4)
    assert detection_scores(set(), {"a", "b"}, {"a": "attack"})["f1"] == 0.0
