"""The demo report's pages: Markdown tables that render, one self-contained HTML page."""

from __future__ import annotations

import re

from streams.local.report_pages import cell, html_page, markdown_report


def _report() -> dict:
    version = {
        "pipeline": "defended",
        "version": 2,
        "round": 2,
        "at_s": 41.26,
        "decision": "reject",
        "reasons": "hr@10 0.31 < champion 0.35 - 2% | exposure of item i865 jumped 0.01 → 0.30",
        "hr@10": 0.31,
        "ndcg@10": 0.2,
        "fgsm_drop": 0.1,
    }
    return {
        "dataset": "simulator",
        "attack": {
            "spec": "click_farm:0.05:0.02",
            "filler": "popular",
            "targets": ["i865"],
            "attackers": 91,
            "start_s": 21.5,
        },  # fmt: skip
        "times": {
            "phases": {"prepare": 3.0, "start": 20.0, "replay": 47.0, "drain": 30.0, "report": 2.0},
            "total_s": 102.0,
        },  # fmt: skip
        "load": {"before": [0.5, 0.4, 0.3], "after": [1.9, 1.5, 0.9], "cpus": 2},
        "inputs": 32203,
        "events": 32102,
        "dead_letters": 101,
        "detection": {"precision": 0.99, "recall": 1.0, "f1": 0.995, "fpr": 0.0005},
        "attack_rows_trained": {
            "defended": {"attacker_events": 3000, "attacker_rows_trained": 60, "kept_out": 0.98},
            "undefended": {"attacker_events": 3000, "attacker_rows_trained": 2950, "kept_out": 0.0167},
        },
        "models": {"rounds": 4, "registered": 4, "promoted": 2, "held": 1, "rejected": 1, "shadow_rounds": 4},
        "champion": {"version": 1, "hr@10": 0.35, "ndcg@10": 0.22, "fgsm_eps": "0.25", "fgsm_ndcg_drop": 0.08},
        "versions": [version, {**version, "pipeline": "undefended", "decision": "shadow", "reasons": "promotion off"}],
        "target_exposure": {
            "before_attack": 0.004,
            "undefended": 0.12,
            "defended": 0.005,
            "lists": {"before_attack": 400, "undefended": 900, "defended": 880},
            "with_target_by_source": {"undefended": {"model": 90, "profile": 14}, "defended": {"profile": 4}},
        },  # fmt: skip
        "verdict": {"undefended_lift": 0.116, "defended_lift": 0.001, "attack_bites": True, "defence_holds": True},
        "freshness_seconds": {"p50": 20.0, "p95": 41.0, "events_measured": 30000},
        "serving": {
            "requests": 2000,
            "answered": 1990,
            "end_to_end_ms": {"p50": 3.0, "p95": 9.0, "p99": 20.0},
            "from_profile": {"defended": 0.71, "undefended": 0.52},
            "from_popularity": {"defended": 0.17, "undefended": 0.05},
        },
        "sample_recommendations": [{"user_id": "u1", "items": ["i1", "i2"], "model_version": 1}],
        "registry": {
            "uri": "sqlite:////x/mlflow.db",
            "model": "advrec-recommender",
            "shadow_model": "advrec-shadow",
            "commands": ["ADVREC_MLFLOW_TRACKING_URI=sqlite:////x/mlflow.db advrec models"],
        },  # fmt: skip
        "plots": ["timeline.png", "exposure.png"],
    }


def test_cell_escapes_what_would_break_a_table():
    assert cell("a | b\nc") == "a \\| b c"
    assert cell(None) == "–" and cell(0.123456) == "0.1235" and cell(True) == "yes"


def test_markdown_report_tells_the_exposure_and_the_gate():
    text = markdown_report(_report())
    assert "| after: undefended shadow | 0.1200 | 900 |" in text
    assert (
        "| attackers' events kept out of every training batch, defended / undefended | "
        "0.9800 (60 of 3000 rows trained) / 0.0167 (2950 of 3000 rows trained) |" in text
    )
    assert "| after: defended pipeline | 0.0050 | 880 |" in text
    assert "the attack bites (undefended ≥ 5× before): **yes**" in text
    assert "exposure of item i865 jumped" in text
    assert "![timeline.png](timeline.png)" in text
    assert "ADVREC_MLFLOW_TRACKING_URI=sqlite:////x/mlflow.db advrec models" in text
    assert "ε=0.25" in text  # the label comes from the settings in force, passed in the report
    assert "| champion at the end | version 1: HR@10 0.3500" in text
    assert "| answers from the popularity list, defended / undefended | 0.17 / 0.05 |" in text
    assert "by the path that served them: defended profile 4; undefended model 90, profile 14." in text
    assert "| answers ranked by the user's profile, defended / undefended | 0.71 / 0.52 |" in text
    # a short run whose every version lost to popularity says what was served instead
    none = markdown_report({**_report(), "champion": None})
    assert "| champion at the end | none promoted: the defended scorer served the trusted popularity list |" in none


def test_html_page_renders_every_table_row_whole_and_inlines_the_pictures():
    images = {"timeline.png": b"\x89PNG-timeline", "exposure.png": b"\x89PNG-exposure"}
    page = html_page(markdown_report(_report()), images)
    rows = re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)
    version_rows = [r for r in rows if "<td>reject</td>" in r or "<td>shadow</td>" in r]
    assert len(version_rows) == 2
    assert all(r.count("<td>") == 9 for r in version_rows)  # the reason's `|` stayed inside its cell
    assert 'src="timeline.png"' not in page and page.count('src="data:image/png;base64,') == 2
    assert page.startswith("<!doctype html>") and "<table>" in page
