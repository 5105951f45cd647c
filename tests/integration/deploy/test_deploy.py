"""Deployment artefacts: Prometheus config and alerts, Grafana dashboard, compose file, metrics contract.

The real tools check them: promtool and a throwaway Prometheus (Debian's `prometheus`), docker-compose
1.29 and the Compose Specification schema that it ships. The session fixture installs what is
missing with scripts/install_ops_tools.sh. Nothing here needs Docker, Kafka or a network besides that.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from streams.contract.settings import Settings
from tests.integration.conftest import prometheus_process
from tests.paths import REPO as ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "advrec.json"
METRICS_DOC = ROOT / "docs" / "metrics.md"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"

# ADVREC_* variables that the compose file sets for processes whose settings are not merged yet
# (trainer and scorer). Settings ignores unknown variables, so a typo would pass silently.
PLANNED_SETTINGS = {"ADVREC_TRAINER_METRICS_PORT", "ADVREC_SCORER_METRICS_PORT"}
# Grafana's interval macros, replaced by a duration before Prometheus parses an expression.
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
}


def _run(args: list[str], cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a tool; on failure, fail the test with its output."""
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


@pytest.fixture(scope="session")
def ops_tools() -> None:
    """promtool, prometheus, docker-compose and jsonschema, installed if missing."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "install_ops_tools.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=840,
    )
    if done.returncode != 0:
        pytest.fail(f"install_ops_tools.sh exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    importlib.invalidate_caches()


@pytest.fixture(scope="session")
def prometheus_api(ops_tools, tmp_path_factory):
    """A throwaway Prometheus on a loopback port, no targets; yields its base URL."""
    with prometheus_process(tmp_path_factory.mktemp("prometheus"), "global:\n  scrape_interval: 1h\n") as base:
        yield base


# ---- helpers: what the artefacts contain --------------------------------------------------------


def _alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _dashboard_panels() -> list[dict]:
    panels = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # panels inside collapsed rows
    return [p for p in panels if p.get("type") != "row"]


def _dashboard_exprs() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in _dashboard_panels() for target in panel["targets"]]


def _contract() -> dict[str, str]:
    """Metric name -> type, from the tables of docs/metrics.md."""
    contract = {}
    for line in METRICS_DOC.read_text().splitlines():
        match = re.match(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*([a-z]+)", line)
        if match:
            contract[match.group(1)] = match.group(2)
    return contract


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers left once matchers, strings, ranges,
    grouping clauses, function calls, keywords and numbers are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+\w+", " ", text)
    text = re.sub(r"\b[a-z_]+\s*\(", " ", text)  # function and aggregation calls
    text = re.sub(r"(?<![a-zA-Z0-9_:])\d[0-9.]*(?:e[+-]?\d+)?", " ", text)
    return {word for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text) if word.lower() not in PROMQL_WORDS}


def _contract_name(name: str, contract: dict[str, str]) -> str | None:
    """The contract metric a series name belongs to (histograms expose _bucket, _sum, _count)."""
    if name in contract:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and contract.get(base) == "histogram":
            return base
    return None


def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


# ---- Prometheus -------------------------------------------------------------------------------------


def test_prometheus_config_is_valid(ops_tools):
    """promtool accepts the scrape config and the rule files it names."""
    out = _run(["promtool", "check", "config", "prometheus.yml"], cwd=PROMETHEUS_DIR)
    assert "SUCCESS" in out.stdout + out.stderr


def test_alert_rules_are_valid(ops_tools):
    """promtool accepts alerts.yml (PromQL parses, templates compile)."""
    _run(["promtool", "check", "rules", "alerts.yml"], cwd=PROMETHEUS_DIR)


def test_alert_unit_tests_pass(ops_tools):
    """Every promtool unit test in alerts_test.yml passes: alerts fire on bad series, not on normal ones."""
    out = _run(["promtool", "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS_DIR)
    assert "SUCCESS" in out.stdout + out.stderr


def test_every_alert_is_tested_firing_and_quiet():
    """Each alert has a unit test case where it fires and one where it stays quiet."""
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    fires, quiet = set(), set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alert_rules()}
    assert names - fires == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"


def test_every_alert_has_annotations_and_a_runbook_entry():
    """summary, description and a runbook_url whose anchor is a heading of docs/operations.md."""
    anchors = {_anchor(line.lstrip("#")) for line in OPERATIONS_DOC.read_text().splitlines() if line.startswith("#")}
    for rule in _alert_rules():
        annotations = rule["annotations"]
        assert annotations.get("summary") and annotations.get("description"), rule["alert"]
        assert rule["labels"]["severity"] in {"page", "warning"}, rule["alert"]
        doc, _, anchor = annotations["runbook_url"].partition("#")
        assert doc == "docs/operations.md" and anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, f"docs/operations.md has no heading for {rule['alert']}"


def test_scrape_jobs_match_compose_services_and_ports():
    """Each advrec job scrapes a compose service on the metrics port that service is configured with."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    compose = _compose()
    env = compose["x-advrec-env"]
    expected = {
        "advrec-worker": ("worker", env["ADVREC_WEB_PORT"]),
        "advrec-trainer": ("trainer", env["ADVREC_TRAINER_METRICS_PORT"]),
        "advrec-scorer": ("scorer", env["ADVREC_SCORER_METRICS_PORT"]),
        "advrec-detector": ("detector", env["ADVREC_DETECTOR_WEB_PORT"]),
        "advrec-windows": ("windows", env["ADVREC_WINDOWS_WEB_PORT"]),
        "mlflow": ("mlflow", "5000"),
    }
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, (service, port) in expected.items():
        assert service in compose["services"], service
        job = jobs[name]
        targets = [f"{n}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for n in sd["names"]]
        targets += [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        assert targets == [f"{service}:{port}"], (name, targets)


# ---- Grafana ----------------------------------------------------------------------------------------


def test_dashboard_exprs_parse_in_prometheus(prometheus_api):
    """A real Prometheus evaluates every panel's query without error."""
    exprs = _dashboard_exprs()
    assert len(exprs) >= 20
    for title, expr in exprs:
        for macro, value in GRAFANA_MACROS.items():
            expr = expr.replace(macro, value)
        assert "$" not in expr, f"{title}: unknown Grafana variable in {expr!r}"
        url = f"{prometheus_api}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
        assert body["status"] == "success", f"{title}: {expr!r}: {body.get('error')}"


def test_prometheus_rejects_a_bad_expression(prometheus_api):
    """The parse check above can fail: a broken query comes back as an error."""
    url = f"{prometheus_api}/api/v1/query?{urllib.parse.urlencode({'query': 'sum by (le (rate(x[1m]))'})}"
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(url, timeout=10)
    assert json.loads(raised.value.read())["status"] == "error"


def test_dashboard_covers_the_required_views():
    """The panels the operations guide promises are there."""
    titles = " | ".join(panel["title"].lower() for panel in _dashboard_panels())
    for words in [
        "events/s by type",
        "dead letters",
        "processing latency",
        "consumer lag",
        "flags/s by reason",
        "score distribution",
        "training rounds",
        "hr@10",
        "promotion",
        "champion age",
        "scoring latency",
        "recommendations/s by source",
        "freshness",
    ]:
        assert words in titles, words


def test_dashboard_uses_the_provisioned_datasource_and_folder():
    """Panels name the provisioned datasource uid; the provider reads the folder compose mounts."""
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for panel in _dashboard_panels():
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert all(t["datasource"]["uid"] == uid for t in panel["targets"]), panel["title"]
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/advrec.yml").read_text())["providers"][0]
    mounts = _compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert "./prometheus:/etc/prometheus:ro" in _compose()["services"]["prometheus"]["volumes"]


# ---- the metrics contract ---------------------------------------------------------------------------


def test_metric_name_extraction():
    """metric_names finds series and ignores labels, functions and keywords."""
    expr = (
        'histogram_quantile(0.99, sum by (job, le) (rate(a_seconds_bucket{job="x"}[5m]))) > 0.005 '
        'and b_total offset 5m or on() group_left() max(c_at_10) unless absent(up{job=~"w.*"} == 1) > 6 * 3600'
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c_at_10", "up"}


def test_dashboards_and_alerts_use_only_contract_metrics():
    """Every series a panel or an alert reads is defined in docs/metrics.md."""
    contract = _contract()
    assert len(contract) >= 30 and contract["advrec_freshness_seconds"] == "histogram"
    used = [(title, name) for title, expr in _dashboard_exprs() for name in metric_names(expr)]
    used += [(rule["alert"], name) for rule in _alert_rules() for name in metric_names(rule["expr"])]
    unknown = sorted({(where, name) for where, name in used if _contract_name(name, contract) is None})
    assert unknown == []


def test_every_contract_metric_is_on_the_dashboard_or_in_an_alert():
    """No metric of the contract goes unwatched."""
    contract = _contract()
    exprs = [expr for _, expr in _dashboard_exprs()] + [rule["expr"] for rule in _alert_rules()]
    watched = {_contract_name(name, contract) for expr in exprs for name in metric_names(expr)}
    assert set(contract) - watched == set()


def test_implemented_worker_metrics_are_in_the_contract():
    """The metrics streams/worker/metrics.py defines are documented with the same type."""
    from prometheus_client import REGISTRY

    from streams.worker import metrics  # noqa: F401  (registers the worker's metrics)

    contract = _contract()
    ours = {m.name: m.type for m in REGISTRY.collect() if m.name.startswith("advrec_")}
    assert ours
    for name, kind in ours.items():
        assert contract.get(name if kind != "counter" else f"{name}_total") == kind, name


# ---- compose ----------------------------------------------------------------------------------------


def test_compose_config_is_valid(ops_tools):
    """docker-compose 1.29 resolves and validates the file."""
    _run(["docker-compose", "-f", str(COMPOSE_FILE), "config", "-q"], cwd=DEPLOY)


def _compose_spec_schema() -> dict:
    """The Compose Specification schema shipped inside the installed docker-compose package."""
    launcher = Path(shutil.which("docker-compose")).read_text(errors="replace").splitlines()[0]
    python = launcher.removeprefix("#!").split()[0] if launcher.startswith("#!") else "python3"
    out = _run(
        [
            python,
            "-c",
            "import compose, pathlib; print(pathlib.Path(compose.__file__).parent / 'config' / 'compose_spec.json')",
        ]
    )
    return json.loads(Path(out.stdout.strip()).read_text())


def test_compose_file_matches_the_compose_spec_schema(ops_tools):
    """The file as written (before interpolation) validates against the Compose Specification schema."""
    import jsonschema

    schema = _compose_spec_schema()
    validator = jsonschema.Draft201909Validator
    validator.check_schema(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(schema).iter_errors(_compose())]
    assert errors == []
    broken = _compose()
    broken["services"]["worker"]["replica"] = 3
    assert list(validator(schema).iter_errors(broken)), "the schema should reject an unknown service key"


def test_compose_services_are_wired_for_a_cluster():
    """Kafka in KRaft mode, MLflow on Postgres serving artifacts, workers scalable, trainer on a GPU."""
    services = _compose()["services"]
    assert {"kafka", "kafka-init", "postgres", "mlflow", "worker", "trainer", "scorer", "prometheus", "grafana"} <= set(
        services
    )
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    mlflow = " ".join(services["mlflow"]["command"])
    assert "postgresql://" in mlflow and "--serve-artifacts" in mlflow
    for name, command in [
        ("worker", "worker"),
        ("trainer", "train"),
        ("scorer", "scorer"),
        ("detector", "detector"),
        ("windows", "windows"),
    ]:
        service = services[name]
        assert service["command"] == ["advrec", command]
        env = service["environment"]
        assert env["ADVREC_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["ADVREC_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert env["ADVREC_WEB_BIND"] == "0.0.0.0" and env["ADVREC_WEB_HOST"] == ""  # advertise the hostname
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["worker"]["deploy"]["replicas"] >= 1
    # the detector process is opt-in, and it runs only where the workers leave the detector to it
    assert services["detector"]["profiles"] == ["detector"] and services["detector"]["deploy"]["replicas"] == 1
    assert services["detector"]["environment"]["ADVREC_FRAUD_IN_WORKER"] == "false"
    assert services["worker"]["environment"]["ADVREC_FRAUD_IN_WORKER"] == "${ADVREC_FRAUD_IN_WORKER:-true}"
    # so is the window process, which writes where the workers would and the trainer reads
    assert services["windows"]["profiles"] == ["windows"]
    assert services["windows"]["environment"]["ADVREC_WINDOWS_IN_WORKER"] == "false"
    assert services["worker"]["environment"]["ADVREC_WINDOWS_IN_WORKER"] == "${ADVREC_WINDOWS_IN_WORKER:-true}"
    assert services["windows"]["volumes"] == services["worker"]["volumes"]
    assert "ports" not in services["worker"], "replicas cannot share a fixed host port"
    devices = services["trainer"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert services["trainer"]["build"]["args"]["TORCH_VARIANT"] != "cpu"


def test_compose_sets_only_known_advrec_settings():
    """Every ADVREC_* variable is a Settings field (or a planned one), since Settings ignores typos."""
    known = {f"ADVREC_{name.upper()}" for name in Settings.model_fields} | PLANNED_SETTINGS
    for name, service in _compose()["services"].items():
        env = service.get("environment") or {}
        unknown = {key for key in env if key.startswith("ADVREC_")} - known
        assert unknown == set(), name


def test_dockerfile_installs_torch_before_the_project():
    """The image takes torch from the index TORCH_VARIANT selects, then installs the project."""
    text = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:${PYTHON_VERSION}-slim" in text and "ARG PYTHON_VERSION=3.11" in text
    assert "ARG TORCH_VARIANT=cpu" in text and "download.pytorch.org/whl/${TORCH_VARIANT}" in text
    torch_at = text.index('pip install "torch==')
    assert torch_at < text.index("RUN pip install .")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
