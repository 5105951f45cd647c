"""Pure computations behind the demo's report: detection scores, freshness, histogram quantiles.

No Kafka, MLflow or files: the demo gathers the facts and these functions turn them into numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["freshness_seconds", "histogram_quantile", "percentiles"]


def freshness_seconds(
    arrivals_by_round: Mapping[int, Iterable[float]],
    round_of_version: Mapping[int, int],
    first_served: Mapping[int, float],
) -> np.ndarray:
    """Per event: first time a model trained on its batch (that round or a later, warm-started one) served.

    arrivals_by_round: Kafka arrival times of the events each training round learnt from.
    round_of_version: the round that produced each registered version.
    first_served: when each version first answered a request. Events never served are left out.
    """
    served = sorted((round_of_version[v], t) for v, t in first_served.items() if v in round_of_version)
    out = []
    for round_no, arrivals in arrivals_by_round.items():
        times = [t for r, t in served if r >= round_no]
        if times:
            first = min(times)
            out.extend(first - a for a in arrivals)
    return np.asarray(out, dtype=float)


def percentiles(values: np.ndarray, qs: Iterable[int] = (50, 95)) -> dict[str, float | None]:
    """{"p50": .., "p95": ..} of the values (None when there are none)."""
    return {f"p{q}": (float(np.percentile(values, q)) if len(values) else None) for q in qs}


def histogram_quantile(q: float, samples: Mapping[str, float], name: str) -> float | None:
    """Prometheus-style quantile from a histogram's cumulative `_bucket` samples (None if empty)."""
    buckets = []
    for key, value in samples.items():
        if key.startswith(f"{name}_bucket{{"):
            bound = key.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((math.inf if bound == "+Inf" else float(bound), value))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / width if width else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound
