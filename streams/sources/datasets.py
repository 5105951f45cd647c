"""Datasets as users have them: interaction files read into frames, and replays of them as events.

`read_ratings` reads `user item rating [timestamp]` as whitespace, tab or CSV, header or not; one
reader serves every command that takes `--ratings FILE` (eval-detection, eval-model, train
--from-file) and the producer, so that all of them agree on what a file means. The `*_events`
generators yield contract-shaped dicts (docs/topics.md) in time order. Event ids are derived from
the source row, so replaying a file twice produces the same ids (and the worker's per-event
idempotency makes the second replay a no-op). Pure pandas: never touches Kafka.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from streams.contract.errors import UserError

__all__ = [
    "read_ratings",
    "COLUMN_ALIASES",
    "movielens_events",
    "taobao_events",
    "table_events",
    "TAOBAO_TYPES",
    "open_events",
    "parse_mapping",
    "detect_format",
    "check_dataset",
]

# Header names we recognise, per canonical column (case-insensitive).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("user", "user_id", "userid", "uid", "u"),
    "item": ("item", "item_id", "itemid", "movie_id", "movieid", "iid", "i", "product_id"),
    "rating": ("rating", "score", "value", "r"),
    "timestamp": ("timestamp", "ts", "time", "t", "unix_timestamp"),
}


def _first_line(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                return line.strip()
    raise ValueError(f"{path}: file is empty")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_ratings(path: str | Path) -> pd.DataFrame:
    """Read an interaction file into columns user, item (str), rating, timestamp (float, NaN if absent)."""
    path = Path(path)
    line = _first_line(path)
    if "," in line:
        sep = ","
    elif "\t" in line:
        sep = "\t"
    else:
        sep = r"\s+"
    fields = [f.strip().strip('"') for f in (line.split(",") if sep == "," else line.split())]
    # A header names known columns, or has a non-numeric rating column; ids alone may be words.
    known = {alias for aliases in COLUMN_ALIASES.values() for alias in aliases}
    has_header = any(f.lower() in known for f in fields) or (len(fields) > 2 and not _is_number(fields[2]))
    raw = pd.read_csv(path, sep=sep, header=0 if has_header else None, dtype=str, skip_blank_lines=True)
    if raw.shape[1] < 2:
        raise ValueError(f"{path}: need at least two columns (user item [rating [timestamp]])")
    if has_header:
        lower = {str(c).strip().lower(): c for c in raw.columns}
        picked = {}
        for name, aliases in COLUMN_ALIASES.items():
            hit = next((lower[a] for a in aliases if a in lower), None)
            if hit is not None:
                picked[name] = hit
        if "user" not in picked or "item" not in picked:
            # Unknown header names: fall back to position, like a header-less file.
            picked = dict(zip(["user", "item", "rating", "timestamp"], raw.columns))
    else:
        picked = dict(zip(["user", "item", "rating", "timestamp"], raw.columns))
    out = pd.DataFrame(
        {
            "user": raw[picked["user"]].astype(str).str.strip(),
            "item": raw[picked["item"]].astype(str).str.strip(),
        }
    )
    for name in ("rating", "timestamp"):
        out[name] = pd.to_numeric(raw[picked[name]], errors="coerce").astype(float) if name in picked else np.nan
    bad = out["user"].isin(["", "nan"]) | out["item"].isin(["", "nan"])
    return out.loc[~bad].reset_index(drop=True)


TAOBAO_TYPES = {"pv": "click", "buy": "purchase", "cart": "click", "fav": "click"}


def _rows_to_events(frame: pd.DataFrame, prefix: str) -> Iterator[dict]:
    frame = frame.sort_values("ts", kind="stable")
    for row in frame.itertuples(index=True):
        value = (
            None if row.value is None or (isinstance(row.value, float) and math.isnan(row.value)) else float(row.value)
        )
        yield {
            "event_id": f"{prefix}-{row.Index}",
            "user_id": str(row.user_id),
            "item_id": str(row.item_id),
            "type": row.type,
            "ts": float(row.ts),
            "value": value,
            "session_id": None if getattr(row, "session_id", None) is None else str(row.session_id),
        }


def movielens_events(path: str | Path, implicit_threshold: float | None = None) -> Iterator[dict]:
    """MovieLens `u.data` as rating events; with a threshold, rating ≥ it → purchase, else click."""
    ratings = read_ratings(path)
    frame = pd.DataFrame(
        {
            "user_id": ratings["user"],
            "item_id": ratings["item"],
            "ts": ratings["timestamp"].fillna(0.0),
            "value": ratings["rating"],
        }
    )
    if implicit_threshold is None:
        frame["type"] = "rating"
    else:
        frame["type"] = np.where(ratings["rating"] >= implicit_threshold, "purchase", "click")
        frame["value"] = None
    return _rows_to_events(frame, "ml")


def taobao_events(path: str | Path) -> Iterator[dict]:
    """Taobao UserBehavior.csv (user,item,category,behavior,ts): pv/cart/fav → click, buy → purchase."""
    raw = pd.read_csv(
        path,
        header=None,
        names=["user_id", "item_id", "category", "behavior", "ts"],
        dtype={"user_id": str, "item_id": str, "category": str, "behavior": str},
    )
    frame = raw.assign(type=raw["behavior"].map(TAOBAO_TYPES), value=None)
    unknown = frame["type"].isna()
    if unknown.any():
        raise ValueError(f"{path}: unknown behaviour types {sorted(raw.loc[unknown, 'behavior'].unique())}")
    return _rows_to_events(frame, "tb")


def table_events(path: str | Path, mapping: dict[str, str], default_type: str = "click") -> Iterator[dict]:
    """Any CSV/Parquet file; `mapping` names its columns: user_id, item_id, ts [, type, value, session_id]."""
    path = Path(path)
    raw = pd.read_parquet(path) if path.suffix in {".parquet", ".pq"} else pd.read_csv(path)
    missing = [c for c in mapping.values() if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; it has {list(raw.columns)}")
    frame = pd.DataFrame({field: raw[column] for field, column in mapping.items()})
    for needed in ("user_id", "item_id", "ts"):
        if needed not in frame:
            raise ValueError(f"column mapping needs {needed}=COLUMN")
    if "type" not in frame:
        frame["type"] = default_type
    if "value" not in frame:
        frame["value"] = None
    return _rows_to_events(frame, path.stem)


def parse_mapping(text: str) -> dict[str, str]:
    """`user_id=U,item_id=I,ts=T` → {"user_id": "U", ...}: the columns of a generic table file."""
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise UserError(f"--map {text!r}: expected FIELD=COLUMN[,FIELD=COLUMN...]")
    return {field.strip(): column.strip() for field, column in pairs}


def _header(path: Path) -> list[str] | None:
    """The column names of a CSV/TSV file's header line, or None if its first line is data."""
    line = _first_line(path)
    fields = [f.strip().strip('"') for f in (line.split(",") if "," in line else line.split())]
    known = {alias for aliases in COLUMN_ALIASES.values() for alias in aliases}
    numeric = sum(_is_number(f) for f in fields)
    if any(f.lower() in known for f in fields) or numeric == 0:
        return fields
    return None


def _suggest_mapping(columns: list[str]) -> str:
    """A `--map` guessed from column names, for an error message (the user checks it)."""

    def pick(words: tuple[str, ...], fallback: int) -> str:
        # short words must be the whole name ("ts"), longer ones may be part of it ("event_time")
        hit = next((c for c in columns if any(w in c.lower() if len(w) > 2 else w == c.lower() for w in words)), None)
        return hit or columns[min(fallback, len(columns) - 1)]

    return (
        f"user_id={pick(('user', 'customer', 'member', 'visitor'), 0)},"
        f"item_id={pick(('item', 'movie', 'product', 'sku', 'article'), 1)},"
        f"ts={pick(('time', 'date', 'when', 'ts'), len(columns) - 1)}"
    )


def detect_format(path: Path) -> str:
    """What a dataset file is, from its name and first line: movielens | ratings | taobao | unknown.

    movielens: `u.data` (and the 100K splits); taobao: UserBehavior (user,item,category,behavior,ts);
    ratings: anything `read_ratings` understands without help: a header naming the user and item
    columns (MovieLens `ratings.csv` of the ml-latest / 1M / 25M family: userId,movieId,rating,timestamp),
    or headerless `user item [rating [timestamp]]` rows; unknown: a header whose names say nothing.
    """
    name = path.name.lower()
    if name.startswith("u.data") or name.endswith((".base", ".test")):
        return "movielens"
    if path.suffix.lower() in {".parquet", ".pq"}:
        return "unknown"
    line = _first_line(path)
    fields = [f.strip() for f in (line.split(",") if "," in line else line.split())]
    if name.startswith("userbehavior") or (len(fields) == 5 and fields[3].lower() in TAOBAO_TYPES):
        return "taobao"
    header = _header(path)
    if header is None:
        return "ratings" if len(fields) >= 2 else "unknown"
    lower = {c.lower() for c in header}
    has = {key: any(a in lower for a in COLUMN_ALIASES[key]) for key in ("user", "item")}
    return "ratings" if all(has.values()) else "unknown"


def check_dataset(path: Path, mapping: dict[str, str] | None = None) -> str:
    """The format `open_events` will read `path` as; UserError naming the columns and a fitting --map if none."""
    fmt = "table" if mapping else detect_format(path)
    if fmt != "unknown":
        return fmt
    if path.suffix.lower() in {".parquet", ".pq"}:
        columns = [str(c) for c in pd.read_parquet(path).columns]
    else:
        columns = _header(path) or []
    if not columns:
        raise UserError(f"{path}: not a format advrec recognises; name its columns with --map user_id=U,item_id=I,ts=T")
    raise UserError(
        f"{path}: not a format advrec recognises; its columns are {', '.join(columns)}. "
        f"Name them with --map, e.g. --map {_suggest_mapping(columns)}"
    )


def open_events(
    dataset: Path, fmt: str = "auto", mapping: dict[str, str] | None = None, implicit_threshold: float | None = None
) -> Iterator[dict]:
    """The events of a dataset file, its format detected from its name and first line unless `fmt` says."""
    if fmt == "auto":
        fmt = check_dataset(dataset, mapping)
    if fmt in ("movielens", "ratings"):
        return movielens_events(dataset, implicit_threshold)
    if fmt == "taobao":
        return taobao_events(dataset)
    if not mapping:
        raise UserError("--map FIELD=COLUMN,... is required for a generic CSV/Parquet file")
    return table_events(dataset, mapping)
