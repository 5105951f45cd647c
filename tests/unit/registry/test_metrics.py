"""The registry's Prometheus metrics, on a private collector registry: champion age, a round's numbers."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from registry.metrics import DECISIONS, RegistryMetrics
from registry.promotion import Decision


@pytest.fixture
def metrics() -> tuple[RegistryMetrics, CollectorRegistry]:
    reg = CollectorRegistry()
    promotions = Counter("advrec_promotions_total", "p", ["decision"], registry=reg)
    for decision in DECISIONS:
        promotions.labels(decision)
    return (
        RegistryMetrics(
            promotions=promotions,
            champion_version=Gauge("advrec_champion_version", "v", registry=reg),
            champion_age=Gauge("advrec_champion_age_seconds", "a", registry=reg),
            hr_at_10=Gauge("advrec_model_hr_at_10", "h", ["alias"], registry=reg),
            ndcg_at_10=Gauge("advrec_model_ndcg_at_10", "n", ["alias"], registry=reg),
        ),
        reg,
    )


def _value(reg: CollectorRegistry, name: str, **labels: str) -> float | None:
    return reg.get_sample_value(name, labels)


def test_champion_age_counts_from_the_last_move(metrics):
    m, reg = metrics
    assert m.age(now=lambda: 500.0) == 0.0
    m.set_champion(3, 100.0)
    assert _value(reg, "advrec_champion_version") == 3 and m.age(now=lambda: 160.0) == 60.0
    m.set_champion(None, None)
    assert _value(reg, "advrec_champion_version") == 0 and m.age(now=lambda: 500.0) == 0.0


def test_a_promoted_round_is_the_champions_accuracy_and_clears_the_challenger(metrics):
    m, reg = metrics
    m.set_accuracy("challenger", 0.3, 0.2)
    m.record_round(Decision("promote", ("ok",)), {"hr@10": 0.5, "ndcg@10": 0.3}, None)
    assert _value(reg, "advrec_promotions_total", decision="promote") == 1
    assert _value(reg, "advrec_model_hr_at_10", alias="champion") == 0.5
    assert _value(reg, "advrec_model_ndcg_at_10", alias="champion") == 0.3
    assert _value(reg, "advrec_model_hr_at_10", alias="challenger") is None


def test_a_rejected_round_is_the_challengers_accuracy_beside_the_champion_on_the_same_split(metrics):
    m, reg = metrics
    champion_report = {"hr@10": 0.6, "ndcg@10": 0.4}
    m.record_round(Decision("reject", ("worse",)), {"hr@10": 0.4, "ndcg@10": 0.2}, champion_report)
    assert _value(reg, "advrec_promotions_total", decision="reject") == 1
    assert _value(reg, "advrec_promotions_total", decision="promote") == 0
    assert _value(reg, "advrec_model_hr_at_10", alias="challenger") == 0.4
    assert _value(reg, "advrec_model_hr_at_10", alias="champion") == 0.6
    m.record_round(Decision("hold", ("few users",)), {"hr@10": 0.45, "ndcg@10": 0.25}, None)
    assert _value(reg, "advrec_model_hr_at_10", alias="challenger") == 0.45
    assert _value(reg, "advrec_model_hr_at_10", alias="champion") == 0.6  # untouched without a champion report
