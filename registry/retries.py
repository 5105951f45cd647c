"""Bounded retries of MLflow calls: which errors are transient, and the backoff loop around a call.

Every MLflow call of the registry goes through `with_retries`; MLflow's own HTTP retries are turned
off by `bound_mlflow_http` so that ours are the only ones. It must never read or write the
environment: an `MLFLOW_HTTP_*` variable set by the process launcher still wins over our defaults.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from mlflow.environment_variables import (
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR,
    MLFLOW_HTTP_REQUEST_MAX_RETRIES,
    MLFLOW_HTTP_REQUEST_TIMEOUT,
)
from mlflow.exceptions import MlflowException

from registry.errors import RegistryUnavailable

__all__ = ["PERMANENT_ERROR_CODES", "is_transient", "with_retries", "bound_mlflow_http"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# MLflow error codes that no retry can fix: the request itself is wrong or not allowed.
PERMANENT_ERROR_CODES = frozenset(
    {
        "RESOURCE_DOES_NOT_EXIST",
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_ALREADY_EXISTS",
        "BAD_REQUEST",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "INVALID_STATE",
        "FEATURE_DISABLED",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether a failed MLflow call may succeed if tried again (network, server, database hiccups)."""
    if isinstance(exc, MlflowException):
        return exc.error_code not in PERMANENT_ERROR_CODES
    return isinstance(exc, (OSError, ConnectionError)) or type(exc).__module__.startswith(
        ("requests", "urllib3", "sqlalchemy")
    )


def with_retries(
    fn: Callable[[], T],
    what: str,
    attempts: int = 5,
    backoff_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call fn; on a transient error retry after backoff_s, 2·backoff_s, …; RegistryUnavailable at the end."""
    waited = 0.0
    for attempt in range(1, max(1, attempts) + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below
            if not is_transient(exc):
                raise
            if attempt >= attempts:
                raise RegistryUnavailable(
                    f"MLflow unreachable while {what}: gave up after {attempt} attempts "
                    f"and {waited:.1f}s of backoff; last error: {exc}"
                ) from exc
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning(
                "MLflow error while %s (attempt %d/%d), retrying in %.1fs: %s", what, attempt, attempts, delay, exc
            )
            sleep(delay)
            waited += delay
    raise AssertionError("unreachable")


def bound_mlflow_http(timeout_s: int = 15) -> None:
    """Make MLflow's HTTP client fail fast by default: no retries of its own, a timeout, no progress bars.

    MLflow's own retries would wait minutes on a dead server; ours are bounded instead. Only
    MLflow's built-in defaults change (process-wide, idempotent): the environment is never
    touched, and a variable the launcher set still takes precedence.
    """
    MLFLOW_HTTP_REQUEST_MAX_RETRIES.default = 0
    MLFLOW_HTTP_REQUEST_TIMEOUT.default = timeout_s
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.default = False  # no progress bars in logs
