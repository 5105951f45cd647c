"""`advrec demo` end to end, as a user runs it: its own broker, five processes, the report, the registry."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.paths import REPO

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)
def test_demo_writes_the_report_and_its_registry_answers(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "ADVREC_KAFKA_BOOTSTRAP": "", "ADVREC_DATA_DIR": str(tmp_path / "var")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "demo",
            "--events",
            "12000",
            "--rate",
            "1000",
            "--duration",
            "300",
            "--out",
            str(out),
        ],  # fmt: skip
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=560,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    # every phase shows progress, in the log as on stdout
    log = (out / "demo.log").read_text()
    for phase in ("prepare", "start", "replay", "drain", "serve", "stop", "report"):
        assert re.search(rf"\] {phase} done in [0-9.]+ s", log), phase
    assert "replay: " in log and "worker up" in log and "shadow-scorer up" in log

    for name in ("report.md", "report.html", "report.json", "timeline.png", "exposure.png", "freshness.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    exposure = report["target_exposure"]
    assert {"before_attack", "undefended", "defended"} <= set(exposure)
    assert report["plots"] == ["timeline.png", "exposure.png", "freshness.png"]
    assert report["attack"]["targets"] and report["attack"]["start_s"] is not None
    # both pipelines trained and served lists after the attack started; the shadow was never promoted
    assert exposure["lists"]["undefended"] > 0 and exposure["lists"]["defended"] > 0
    assert all(0.0 <= exposure[k] <= 1.0 for k in ("undefended", "defended"))
    assert set(exposure["with_target_by_source"]) == {"undefended", "defended"}  # which path showed a target
    serving = report["serving"]  # both pipelines answered: each has a share of each source
    for source in ("from_profile", "from_popularity"):
        assert all(0.0 <= serving[source][k] <= 1.0 for k in ("defended", "undefended"))
    pipelines = {v["pipeline"] for v in report["versions"]}
    assert pipelines == {"defended", "undefended"}
    shadow = [v for v in report["versions"] if v["pipeline"] == "undefended"]
    assert all(v["decision"] == "shadow" and "champion" not in v["aliases"] for v in shadow)
    # the gate decided every defended version (a run this short may promote none: each below the
    # popularity list, which the defended scorer then serves, and the drain still settles)
    defended = [v for v in report["versions"] if v["pipeline"] == "defended"]
    assert defended and all(v["decision"] in {"promote", "reject", "hold"} for v in defended)
    assert set(report["times"]["phases"]) == {"prepare", "start", "replay", "drain", "serve", "stop", "report"}
    html = (out / "report.html").read_text()
    assert "<table>" in html and html.count("data:image/png;base64,") == 3

    # the registry commands the demo prints list the demo's versions
    printed = [line.strip() for line in run.stdout.splitlines() if line.strip().endswith("advrec models")]
    assert len(printed) == 2, run.stdout[-2000:]
    for command, pipeline in zip(printed, ("defended", "undefended")):
        assignments = shlex.split(command)[:-2]
        extra = dict(a.split("=", 1) for a in assignments)
        listed = subprocess.run(
            [sys.executable, "-m", "streams.cli", "models", "--json"],
            env={**env, **extra},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr
        versions = {row["version"] for row in json.loads(listed.stdout)}
        assert versions == {v["version"] for v in report["versions"] if v["pipeline"] == pipeline}
