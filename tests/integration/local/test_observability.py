"""Operations end to end: a real Prometheus scrapes a real worker, trainer and scorer.

Queries a metric of each process through Prometheus' HTTP API, evaluates the alert rules against
the live series, and runs every Grafana panel's PromQL (no Grafana server can be installed here).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from streams.kafka.producer import produce_events, send_raw
from streams.kafka.topics import ensure_topics
from streams.local.cluster import ClusterConfig, LocalCluster
from streams.sources.simulator import simulated_events
from tests.integration.conftest import prometheus_process, wait_for
from tests.integration.deploy.test_deploy import GRAFANA_MACROS, _dashboard_exprs, ops_tools  # noqa: F401
from tests.paths import REPO as ROOT

pytestmark = pytest.mark.integration


def _query(base: str, expr: str) -> dict:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Broker, worker, trainer, scorer (real processes) with some traffic through them."""
    state = tmp_path_factory.mktemp("cluster")
    with LocalCluster(
        ClusterConfig(
            state_dir=state,
            window_max_events=1_000,
            window_max_seconds=2.0,
            trainer_args=("--min-batch-rows", "1500", "--first-epochs", "5"),
        )
    ) as cluster:
        ensure_topics(cluster.bootstrap, ["events", "rec.requests", "recommendations", "model.updates"], 4)
        for name in ("worker", "trainer", "scorer"):
            cluster.start(name)
        produce_events(cluster.bootstrap, "events", simulated_events(n_events=3_000, n_users=200, n_items=150, seed=2))
        send_raw(cluster.bootstrap, "events", [(None, b"{oops")])
        yield cluster


@pytest.fixture(scope="module")
def prometheus(ops_tools, cluster, tmp_path_factory):  # noqa: F811
    """Debian's prometheus scraping the three processes every second, with advrec's alert rules."""
    home = tmp_path_factory.mktemp("prometheus")
    rules = (ROOT / "deploy" / "prometheus" / "alerts.yml").resolve()
    jobs = {"advrec-worker": "worker", "advrec-trainer": "trainer", "advrec-scorer": "scorer"}
    scrape = "\n".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{cluster.ports[name]}']"
        for job, name in jobs.items()
    )
    config = (
        f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}\n"
        f"scrape_configs:\n{scrape}\n"
    )
    with prometheus_process(home, config) as base:
        yield base


def test_prometheus_scrapes_every_process_and_sees_their_metrics(prometheus, cluster):
    def all_up():
        result = _query(prometheus, "up")["data"]["result"]
        return len(result) == 3 and all(r["value"][1] == "1" for r in result)

    wait_for(all_up, 60, "worker, trainer and scorer up in Prometheus")

    def value(expr: str) -> float | None:
        result = _query(prometheus, expr)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    processed = wait_for(
        lambda: value("sum(advrec_events_processed_total)") == 3_000 and 3_000,
        90,
        "3000 events processed, as seen by Prometheus",
    )
    assert processed == 3_000
    assert value('sum(advrec_dead_letters_total{reason="malformed_json"})') == 1
    wait_for(lambda: (value("sum(advrec_batches_consumed_total)") or 0) >= 1, 90, "the trainer consumed a batch")
    wait_for(
        lambda: (value('sum(advrec_training_rounds_total{outcome="success"})') or 0) >= 1,
        120,
        "a training round, as seen by Prometheus",
    )
    # with a model registered (or at least popularity known), requests get answers
    send_raw(
        cluster.bootstrap,
        "rec.requests",
        [
            (f"u{i}".encode(), json.dumps({"request_id": uuid.uuid4().hex, "user_id": f"u{i}", "k": 5}).encode())
            for i in range(50)
        ],
    )
    wait_for(lambda: (value("sum(advrec_recommendations_total)") or 0) >= 50, 60, "the scorer answered 50 requests")
    assert value("advrec_scoring_latency_seconds_count") >= 1
    assert value("sum(advrec_windows_written_total)") >= 1


def test_alert_rules_evaluate_on_live_series(prometheus, cluster):
    def loaded():
        groups = json.loads(urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=5).read())["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(rule.get("health") == "ok" for rule in rules) else None

    rules = wait_for(loaded, 60, "every alert rule evaluated with health ok")
    assert len(rules) >= 7
    # a healthy little cluster: no target is down
    firing = {rule["name"] for rule in rules if rule.get("state") == "firing"}
    assert "AdvrecTargetDown" not in firing and "AdvrecNoWorkerUp" not in firing


def test_every_dashboard_panel_query_answers(prometheus, cluster):
    wait_for(lambda: _query(prometheus, "sum(advrec_events_processed_total)")["data"]["result"], 60, "first samples")
    time.sleep(3)  # a few scrapes, so rate() over the macros' windows has two points
    answered_with_data = 0
    for title, expr in _dashboard_exprs():
        for macro, value in GRAFANA_MACROS.items():
            expr = expr.replace(macro, value)
        answer = _query(prometheus, expr)
        assert answer["status"] == "success", (title, expr, answer)
        answered_with_data += bool(answer["data"]["result"])
    # the panels of this cluster's own activity (events, dead letters, latency, up, ...) show data
    assert answered_with_data >= 10, answered_with_data
