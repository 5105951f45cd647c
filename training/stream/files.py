"""The default round handler: each successful round's model and report as files under a directory.

`round-{n}.pt` (the model, written under a temporary name then renamed) and `round-{n}.json`
(report and lineage). The registry's handler wraps this one. It must never register, promote or
delete anything.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from training.models import Recommender
from training.stream.trainer import OnRound

__all__ = ["save_round_files"]

log = logging.getLogger(__name__)


def save_round_files(models_dir: str | Path) -> OnRound:
    """The default on_round: write round-{n}.pt and round-{n}.json (report and lineage) under models_dir."""
    directory = Path(models_dir)

    def on_round(model: Recommender, report: dict, lineage: dict) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        n = report["round"]
        tmp = directory / f"round-{n}.pt.tmp"
        model.save(tmp)
        os.replace(tmp, directory / f"round-{n}.pt")
        (directory / f"round-{n}.json").write_text(
            json.dumps({"report": report, "lineage": lineage}, indent=2, default=str)
        )
        log.info("round %d: %s", n, json.dumps({k: report[k] for k in ("hr@10", "ndcg@10", "test_users")}))

    return on_round
