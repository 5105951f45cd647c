"""The fraud commands through click's CliRunner: `eval-detection`, `attack` and `label`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from streams.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory, ml_slice):
    d = tmp_path_factory.mktemp("data")
    ml_slice.to_csv(d / "ratings.csv", index=False)  # CSV with a header
    (d / "genuine.txt").write_text("".join(f"{u}\tgenuine\n" for u in ml_slice["user"].unique()))
    return d


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_eval_detection_spreads_attackers_and_reports_end_and_streaming_figures(files):
    args = ["eval-detection", "--ratings", str(files / "ratings.csv"), "--inject", "average:0.05:0.03", "--seed", "2"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    out = last_json(res.output)
    assert {"precision", "recall", "f1", "fpr", "streaming", "trust_gate", "per_attack"} <= set(out)
    assert out["timing"] == "spread" and out["flush_every"] == 500 and out["attackers"] == 15
    assert out["f1"] >= 0.9 and out["fpr"] <= 0.01 and "supervised" not in out
    assert {"precision", "recall", "median_events_to_flag", "median_seconds_to_flag"} <= set(out["streaming"])
    assert last_json(CliRunner().invoke(main, args).output) == out  # deterministic with --seed


def test_eval_detection_timing_changes_the_attack_and_is_reported(files):
    base = ["eval-detection", "--ratings", str(files / "ratings.csv"), "--inject", "random:0.05:0.03"]
    bunched = last_json(CliRunner().invoke(main, [*base, "--timing", "bunched"]).output)
    spread = last_json(CliRunner().invoke(main, [*base, "--timing", "spread"]).output)
    assert bunched["timing"] == "bunched" and spread["timing"] == "spread"
    assert bunched["streaming"] != spread["streaming"]  # the same attackers, at other times
    res = CliRunner().invoke(main, [*base, "--timing", "sometimes"])
    assert res.exit_code != 0 and "sometimes" in res.output


def test_eval_detection_folds_cross_validates_the_supervised_model(files):
    args = [
        "eval-detection",
        "--ratings",
        str(files / "ratings.csv"),
        "--labels",
        str(files / "genuine.txt"),
        "--inject",
        "bandwagon:0.05:0.03",
        "--folds",
        "3",
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    sup = last_json(res.output)["supervised"]
    assert sup["folds"] == 3 and sup["f1"] >= 0.9 and sup["tp"] + sup["fn"] == 15


def test_eval_detection_folds_need_labels_of_both_kinds(files):
    args = ["eval-detection", "--ratings", str(files / "ratings.csv"), "--labels", str(files / "genuine.txt")]
    res = CliRunner().invoke(main, [*args, "--folds", "5"])
    assert res.exit_code != 0 and "at least 5 attackers" in res.output
    plain = CliRunner().invoke(main, args)  # without --folds, labels only score
    assert plain.exit_code == 0 and last_json(plain.output)["attackers"] == 0


def test_eval_detection_rejects_a_bad_inject(files):
    res = CliRunner().invoke(
        main, ["eval-detection", "--ratings", str(files / "ratings.csv"), "--inject", "average:5%"]
    )
    assert res.exit_code != 0 and "TYPE:ATTACK_SIZE:FILLER_SIZE" in res.output


def _attack(files, tmp_path, *extra):
    ev, lab = tmp_path / "events.jsonl", tmp_path / "labels.txt"
    args = ["attack", "--ratings", str(files / "ratings.csv"), "--type", "average", "--seed", "2"]
    res = CliRunner().invoke(main, [*args, "--out", str(ev), "--labels-out", str(lab), *extra])
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in ev.read_text().splitlines()]
    return events, [line.split() for line in lab.read_text().splitlines()]


def test_attack_cli_writes_events_and_separate_labels(files, tmp_path, ml_slice):
    events, labels = _attack(files, tmp_path)
    n_items = ml_slice["item"].nunique()
    assert len(labels) == 15 and all(y == "1" and k == "average" for _, y, k in labels)
    assert {e["user_id"] for e in events} == {u for u, _, _ in labels}
    assert len(events) == 15 * (1 + round(0.03 * n_items))
    assert all("label" not in e and "average" not in json.dumps(e) for e in events)
    lo, hi = ml_slice["timestamp"].min(), ml_slice["timestamp"].max()
    ts = [e["ts"] for e in events]
    assert lo <= min(ts) and max(ts) <= hi and max(ts) - min(ts) > 0.5 * (hi - lo)  # spread by default
    bunched, _ = _attack(files, tmp_path, "--timing", "bunched")
    assert min(e["ts"] for e in bunched) >= hi - 86_400.0


def test_label_sends_a_fraud_label_keyed_by_user(monkeypatch):
    import streams.kafka.address
    import streams.kafka.producer
    import streams.kafka.topics

    sent = []
    monkeypatch.setattr(streams.kafka.address, "resolve_bootstrap", lambda settings: "broker:9092")
    monkeypatch.setattr(streams.kafka.topics, "ensure_topics", lambda *args, **kw: None)
    monkeypatch.setattr(
        streams.kafka.producer, "produce_events", lambda bootstrap, topic, events: sent.append((topic, list(events)))
    )
    res = CliRunner().invoke(main, ["label", "u42", "--fraud", "--analyst", "ann"])
    assert res.exit_code == 0, res.output
    [(topic, [record])] = sent
    assert topic == "fraud.labels"
    assert record["user_id"] == "u42" and record["label"] == "fraud" and record["analyst"] == "ann"
    CliRunner().invoke(main, ["label", "u7", "--genuine", "--topic", "other"])
    assert sent[-1][0] == "other" and sent[-1][1][0]["label"] == "genuine"
    res = CliRunner().invoke(main, ["label", "u7"])
    assert res.exit_code != 0 and "--fraud or --genuine" in res.output and len(sent) == 2
