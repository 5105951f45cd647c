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


def test_models_without_a_store_points_at_the_demos_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVREC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ADVREC_MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "demo" / "state").mkdir(parents=True)
    (tmp_path / "demo" / "state" / "mlflow.db").touch()
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0, result.output
    assert f"no MLflow store at sqlite:///{tmp_path / 'mlflow.db'}" in result.output
    assert (
        f"ADVREC_MLFLOW_TRACKING_URI=sqlite:///{tmp_path / 'demo' / 'state' / 'mlflow.db'} advrec models"
        in result.output
    )
    assert not (tmp_path / "mlflow.db").exists()
