"""Bounded retries of MLflow calls: which errors are transient, the backoff, MLflow's own HTTP bounds."""

from __future__ import annotations

import os

import pytest
import requests
from mlflow.environment_variables import (
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR,
    MLFLOW_HTTP_REQUEST_MAX_RETRIES,
    MLFLOW_HTTP_REQUEST_TIMEOUT,
)
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    PERMISSION_DENIED,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    UNAUTHENTICATED,
)

from registry.errors import RegistryError, RegistryUnavailable
from registry.retries import bound_mlflow_http, is_transient, with_retries


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


@pytest.mark.parametrize(
    "exc, transient",
    [
        (ConnectionError("refused"), True),
        (OSError("disk hiccup"), True),
        (TimeoutError("slow"), True),  # an OSError
        (requests.exceptions.ReadTimeout("read timed out"), True),
        (MlflowException("server error", error_code=INTERNAL_ERROR), True),
        (MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE), True),
        (MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST), False),
        (MlflowException("bad alias", error_code=INVALID_PARAMETER_VALUE), False),
        (MlflowException("who are you", error_code=UNAUTHENTICATED), False),
        (MlflowException("not yours", error_code=PERMISSION_DENIED), False),
        (ValueError("a bug"), False),
        (KeyError("a bug"), False),
        (RegistryError("no previous champion"), False),
        (RegistryUnavailable("gave up"), False),  # an inner retry already gave up: do not multiply
    ],
)
def test_which_errors_are_transient(exc, transient):
    assert is_transient(exc) is transient


def test_a_registry_error_inside_a_retried_call_propagates_at_once():
    sleeps = []

    def missing():
        raise RegistryError("advrec has no version 9")

    with pytest.raises(RegistryError, match="no version 9"):
        with_retries(missing, "reading version 9", attempts=5, sleep=sleeps.append)
    assert sleeps == []


def test_mlflow_http_bounds_change_defaults_never_the_environment(monkeypatch):
    for knob in (MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR):
        monkeypatch.setattr(knob, "default", knob.default)  # restored after the test
        monkeypatch.delenv(knob.name, raising=False)
    before = dict(os.environ)
    bound_mlflow_http(timeout_s=15)
    assert dict(os.environ) == before
    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 0
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 15
    assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is False
    # What the launcher set still wins.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 60
