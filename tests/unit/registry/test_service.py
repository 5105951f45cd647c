"""Pure helpers of the registry: metric/param flattening and the bounded retry."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from registry.service import RegistryUnavailable, with_retries
from registry.tracking import flatten_metrics, flatten_params, metric_name


def test_flatten_report_into_mlflow_names():
    report = {
        "hr@10": 0.5,
        "fgsm": {"0.25": {"ndcg@10": 0.3}},
        "poisoning": {"lift": 0.01},
        "eps_mode": "relative",
        "ok": True,
        "bad": float("nan"),
    }
    assert flatten_metrics(report) == {"hr_at_10": 0.5, "fgsm_0.25_ndcg_at_10": 0.3, "poisoning_lift": 0.01}
    assert metric_name("recall@20") == "recall_at_20"
    assert flatten_params({"dim": 8, "gate": {"tol": 0.02}, "name": "x"}) == {
        "dim": "8",
        "gate.tol": "0.02",
        "name": "x",
    }


def test_retries_back_off_exponentially_then_fail_clearly():
    sleeps, calls = [], []

    def down():
        calls.append(1)
        raise ConnectionError("connection refused")

    with pytest.raises(RegistryUnavailable, match="while reading: gave up after 4 attempts and 0.7s"):
        with_retries(down, "reading", attempts=4, backoff_s=0.1, sleep=sleeps.append)
    assert len(calls) == 4 and sleeps == pytest.approx([0.1, 0.2, 0.4])


def test_retries_recover_and_permanent_errors_are_not_retried():
    outcomes = iter([OSError("blip"), "ok"])

    def flaky():
        result = next(outcomes)
        if isinstance(result, Exception):
            raise result
        return result

    assert with_retries(flaky, "x", attempts=3, backoff_s=0.01, sleep=lambda s: None) == "ok"
    sleeps = []
    with pytest.raises(MlflowException):
        with_retries(
            lambda: (_ for _ in ()).throw(MlflowException("no such", error_code=RESOURCE_DOES_NOT_EXIST)),
            "x",
            attempts=3,
            sleep=sleeps.append,
        )
    assert sleeps == []
