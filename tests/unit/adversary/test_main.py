"""The learned attacker's commands through click's CliRunner: `attack --inject gan:...` and `eval-attack`."""

from __future__ import annotations

import json

import mlflow
import pytest
from click.testing import CliRunner

from streams.cli import main
from tests.unit.conftest import make_ratings


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    make_ratings(150, 200, seed=11).to_csv(path, index=False)
    return path


def test_attack_inject_gan_writes_events_and_labels_apart(ratings_csv, tmp_path):
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.txt"
    args = ["attack", "--ratings", str(ratings_csv), "--inject", "gan:0.1:0.03", "--steps", "2", "--seed", "3"]
    result = CliRunner().invoke(main, [*args, "--out", str(events), "--labels-out", str(labels)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    truth = [line.split() for line in labels.read_text().splitlines()]
    assert len(truth) == 15 and {k for _, _, k in truth} == {"gan"}
    assert {r["user_id"] for r in rows} == {u for u, _, _ in truth}
    assert all("gan" not in json.dumps(r) for r in rows)  # no label inside an event
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["attackers"] == 15 and summary["events"] == len(rows)


def test_attack_wants_type_or_inject(ratings_csv, tmp_path):
    args = ["attack", "--ratings", str(ratings_csv), "--labels-out", str(tmp_path / "l.txt")]
    assert CliRunner().invoke(main, args).exit_code != 0
    both = [*args, "--type", "average", "--inject", "gan:0.05:0.03"]
    assert CliRunner().invoke(main, both).exit_code != 0


def test_eval_attack_prints_one_json_object_and_logs_every_round_to_mlflow(ratings_csv, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["eval-attack", "--ratings", str(ratings_csv), "--steps", "2", "--rounds", "2", "--targets", "1"]
    args += ["--bpr-seeds", "1", "--epochs", "1", "--details", str(tmp_path / "details.json")]
    result = CliRunner(env={"ADVREC_MLFLOW_TRACKING_URI": uri, "ADVREC_DATA_DIR": str(tmp_path)}).invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"attacks", "hardened"} and "gan" in summary["attacks"]
    details = json.loads((tmp_path / "details.json").read_text())
    client = mlflow.MlflowClient(uri)
    run = client.get_run(details["mlflow_run_id"])
    history = client.get_metric_history(run.info.run_id, "game/recall_gan")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert history[-1].value == summary["hardened"]["recall_gan"]
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/game.png", "plots/generator_training.png"}
