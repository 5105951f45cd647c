import json

from click.testing import CliRunner

from streams.cli import main
from tests.paths import ML100K


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


def test_eval_cold_start_prints_one_json_object(ml_slice, tmp_path):
    path = tmp_path / "slice.tsv"
    ml_slice[ml_slice["user"].astype(int) <= 120].to_csv(path, sep="\t", header=False, index=False)
    items = ML100K.parent / "u.item"
    env = {"ADVREC_TEXT_ENCODER": "hashing", "ADVREC_DATA_DIR": str(tmp_path)}
    args = ["eval-cold-start", "--ratings", str(path), "--items", str(items), "--cold-share", "0.2", "--epochs", "2"]
    result = CliRunner().invoke(main, [*args, "--seed", "3"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("text", "popularity", "random_text"):
        assert set(report[key]) == {"hr@10", "ndcg@10"} and 0.0 <= report[key]["hr@10"] <= 1.0
    assert set(report["warm"]["text"]) == set(report["warm"]["id_only"]) == {"hr@10", "ndcg@10"}
    assert report["warm"]["ndcg_ratio"] == report["warm"]["text"]["ndcg@10"] / report["warm"]["id_only"]["ndcg@10"]
    assert report["encoder"]["name"] == "hashing" and report["seed"] == 3 and report["cold_share"] == 0.2
    # three init seeds per model by default, and the ID-only model against itself beside the ratio
    assert report["init_seeds"] == [3, 103, 203] and len(report["per_init"]) == 3
    assert len(report["noise_floor"]["id_only_vs_itself"]) == 2
    assert (tmp_path / "text-embeddings.sqlite").exists()  # the encoder ran through the cache


def test_produce_catalog_rejects_a_csv_without_a_map(tmp_path):
    path = tmp_path / "products.txt"
    path.write_text("sku,name\nA1,Kettle\n")
    result = CliRunner().invoke(
        main, ["produce", "--catalog", str(path)], env={"ADVREC_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    )
    assert result.exit_code != 0 and "--map" in result.output


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


def test_the_detector_process_refuses_to_run_beside_workers_that_run_the_detector():
    # Two detectors would flag from two states; the workers must hand it over first.
    for env in (
        {"ADVREC_FRAUD_IN_WORKER": "true"},
        {"ADVREC_FRAUD_IN_WORKER": "false", "ADVREC_FRAUD_ENABLED": "false"},
    ):
        result = CliRunner().invoke(main, ["detector"], env=env)
        assert result.exit_code == 2 and "ADVREC_FRAUD_IN_WORKER=false" in result.output, result.output


def test_the_window_process_refuses_to_run_beside_workers_that_run_the_window_sink():
    # Two sinks in two groups would each write every window, each with its own marks.
    result = CliRunner().invoke(main, ["windows"], env={"ADVREC_WINDOWS_IN_WORKER": "true"})
    assert result.exit_code == 2 and "ADVREC_WINDOWS_IN_WORKER=false" in result.output, result.output


def test_exactly_once_is_refused_with_its_reason():
    result = CliRunner().invoke(main, ["worker"], env={"ADVREC_PROCESSING_GUARANTEE": "exactly_once"})
    assert result.exit_code != 0
    assert "ADVREC_PROCESSING_GUARANTEE='exactly_once'" in result.output and "not supported" in result.output
    assert "Traceback" not in result.output


def test_a_bad_setting_is_named_as_it_is_set():
    result = CliRunner().invoke(main, ["scorer"], env={"ADVREC_TOPIC_PARTITIONS": "four"})
    assert result.exit_code != 0 and "ADVREC_TOPIC_PARTITIONS='four'" in result.output


def test_at_least_once_is_the_guarantee(monkeypatch):
    from streams.contract.settings import Settings

    assert Settings().processing_guarantee == "at_least_once"
    monkeypatch.setenv("ADVREC_PROCESSING_GUARANTEE", "at_least_once")
    assert Settings().processing_guarantee == "at_least_once"
