"""Registered versions: the tags a round writes on its version, lineage tags, and the version list.

The formatting and parsing of tags are pure functions (tested with literal inputs); the rest
reads and writes through a `RegistryStore`. It must never move aliases or decide promotions:
that is `registry.aliases` and `registry.promotion`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from registry.promotion import Decision
from registry.store import RegistryStore

__all__ = [
    "FORMAT_TAG",
    "LINEAGE_TAG_LIMIT",
    "tag_name",
    "tag_number",
    "tag_float",
    "round_tags",
    "decision_tags",
    "manual_promotion_tags",
    "new_version_tags",
    "lineage_tags",
    "version_row",
    "write_lineage",
    "list_versions",
]

FORMAT_TAG = "advrec_format"  # the model file's format, e.g. "advrec.mf/2"
LINEAGE_TAG_LIMIT = 4_500


def tag_name(key: str) -> str:
    """A metric key as a tag name: `hr@10` → `hr_at_10`."""
    return key.replace("@", "_at_")


def tag_number(value: Any) -> str:
    """A number as tag text with 6 significant digits; None and NaN as `nan`."""
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.6g}"


def tag_float(tags: Mapping[str, str], key: str) -> float | None:
    """A tag read back as a number; None if it is absent, not a number, or NaN."""
    try:
        value = float(tags[key])
    except (KeyError, ValueError):
        return None
    return None if math.isnan(value) else value


def round_tags(kind: str, model_format: str, run_id: str, numbers: Mapping[str, float]) -> dict[str, str]:
    """The tags of a freshly registered round: model kind, its file's format, run and the gate's numbers."""
    return {
        FORMAT_TAG: model_format,
        "kind": kind,
        "run_id": run_id,
        **{tag_name(k): tag_number(v) for k, v in numbers.items()},
    }


def decision_tags(decision: Decision, now: float, champion: int | None = None) -> dict[str, str]:
    """The tags that record the gate's decision on a version, the champion it faced, and every number it read.

    `gate.challenger_<number>` and `gate.champion_<number>` are the two models' numbers on the
    challenger's evaluation set (`hr_at_10`, `ndcg_at_10`, `fgsm_ndcg_drop`; the challenger's also
    `poisoning_lift`, `exposure_max_jump`, `eval_users`); `gate.popularity_hr_at_10` and
    `gate.popularity_ndcg_at_10` the popularity list's there; `gate.champion_version` is the champion.
    """
    tags = {
        "decision": decision.action,
        "decision_reasons": " | ".join(decision.reasons),
        "decided_at": f"{now:.3f}",
        **{f"gate.{tag_name(k)}": tag_number(v) for k, v in decision.numbers.items()},
    }
    if champion is not None:
        tags["gate.champion_version"] = str(int(champion))
    return tags


def manual_promotion_tags(now: float) -> dict[str, str]:
    """The decision tags of a promotion by hand (`advrec promote`)."""
    return {"decision": "promote", "decision_reasons": "manual promotion", "decided_at": f"{now:.3f}"}


def new_version_tags(
    kind: str,
    model_format: str,
    run_id: str,
    numbers: Mapping[str, float],
    lineage: Mapping[str, Any],
    decision: Decision,
    now: float,
    champion: int | None = None,
) -> dict[str, str]:
    """Every tag a round's version is created with: `round_tags`, `lineage_tags`, `decision_tags`."""
    return {
        **round_tags(kind, model_format, run_id, numbers),
        **lineage_tags(lineage),
        **decision_tags(decision, now, champion),
    }


def lineage_tags(lineage: Mapping[str, Any]) -> dict[str, str]:
    """`lineage.<key>` = JSON of each lineage entry (batch files, offsets, …).

    MLflow caps a tag value at 5,000 characters; a longer value (many batch announcements)
    is tagged by its size only, and the whole lineage stays in the run's lineage.json.
    """
    tags = {}
    for key, value in lineage.items():
        text = json.dumps(value, default=str, sort_keys=True)
        if len(text) > LINEAGE_TAG_LIMIT:
            count = len(value) if hasattr(value, "__len__") else None
            text = json.dumps({"truncated": True, "items": count, "see": "artifact lineage.json"})
        tags[f"lineage.{key}"] = text
    return tags


def version_row(version: Any, tags: Mapping[str, str], aliases: list[str], created_ms: int | None) -> dict[str, Any]:
    """One row of `advrec models`: version, aliases, decision, key metrics, creation time."""
    return {
        "version": int(version),
        "aliases": sorted(aliases),
        "decision": tags.get("decision", ""),
        "kind": tags.get("kind", ""),
        "hr@10": tag_float(tags, "hr_at_10"),
        "ndcg@10": tag_float(tags, "ndcg_at_10"),
        "fgsm_drop": tag_float(tags, "fgsm_ndcg_drop"),
        "poisoning_lift": tag_float(tags, "poisoning_lift"),
        "exposure_max_jump": tag_float(tags, "exposure_max_jump"),
        "reasons": tags.get("decision_reasons", ""),
        "created": created_ms / 1000.0 if created_ms else None,
    }


def write_lineage(store: RegistryStore, version: int, lineage: Mapping[str, Any]) -> None:
    """Tag a version with what it was trained on (see `lineage_tags`)."""
    store.set_version_tags(version, lineage_tags(lineage))


def list_versions(store: RegistryStore) -> list[dict[str, Any]]:
    """Every version as a `version_row`, newest first."""
    held = store.aliases()
    rows = [
        version_row(mv.version, dict(mv.tags), held.get(str(mv.version), []), mv.creation_timestamp)
        for mv in store.versions()
    ]
    return sorted(rows, key=lambda r: -r["version"])
