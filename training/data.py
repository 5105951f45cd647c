"""Reading interaction files: `user item rating [timestamp]` as whitespace, tab or CSV, header or not.

One reader serves every command that takes `--ratings FILE` (eval-detection, eval-model,
train --from-file) and the producer, so that all of them agree on what a file means.
Pure pandas: no torch, no Kafka here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["read_ratings", "COLUMN_ALIASES"]

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
    has_header = (any(f.lower() in known for f in fields)
                  or (len(fields) > 2 and not _is_number(fields[2])))
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
    out = pd.DataFrame({
        "user": raw[picked["user"]].astype(str).str.strip(),
        "item": raw[picked["item"]].astype(str).str.strip(),
    })
    for name in ("rating", "timestamp"):
        out[name] = (pd.to_numeric(raw[picked[name]], errors="coerce").astype(float)
                     if name in picked else np.nan)
    bad = out["user"].isin(["", "nan"]) | out["item"].isin(["", "nan"])
    return out.loc[~bad].reset_index(drop=True)
