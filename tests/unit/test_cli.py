import json

from click.testing import CliRunner

from streams.cli import main


def test_eval_model_prints_metrics_of_both_models(ml_slice, tmp_path):
    path = tmp_path / "slice.tsv"
    ml_slice[ml_slice["user"].astype(int) <= 120].to_csv(path, sep="\t", header=False, index=False)
    result = CliRunner().invoke(main, ["eval-model", "--ratings", str(path), "--epochs", "4", "--seed", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {"bpr", "apr"}
    for _name, got in report.items():
        for key in ("hr@10", "ndcg@10", "recall@20", "ndcg@20"):
            assert 0.0 <= got[key] <= 1.0
        assert set(got["fgsm"]) == {"0.1", "0.25"} and set(got["fgsm"]["0.1"]) == {"hr@10", "ndcg@10"}
        assert got["epoch_seconds"] > 0 and got["epochs"] == 4
    assert {"eps", "reg_adv"} <= set(report["apr"])


def test_eval_model_single_model(ml_slice, tmp_path):
    path = tmp_path / "slice.csv"
    ml_slice[ml_slice["user"].astype(int) <= 60].to_csv(path, index=False)
    result = CliRunner().invoke(main, ["eval-model", "--ratings", str(path), "--model", "bpr", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)) == {"bpr"}
