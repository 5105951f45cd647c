"""The text an encoder sees for each catalog item, and the item vectors the hybrid models learn from.

Each field is its own short sentence ("Genres: Crime, Thriller." / "Released in 1995." / the title /
the description), encoded separately; the blocks are concatenated (a missing field is a zero block)
and the row L2-normalised. Field-wise encoding beat one string for both encoders on the seed-0
validation split of ML-100K, and the title block hurt there (docs/text.md), hence `DEFAULT_FIELDS`.
Pure: numpy / pandas and an injected `TextEncoder`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.text.encoders import TextEncoder, l2_normalise

__all__ = ["FIELDS", "DEFAULT_FIELDS", "TEXT_FORMAT", "item_text", "item_field", "encode_items", "category_matrix"]

FIELDS = ("text", "title", "categories", "year", "description")
# Kept for a model's lifetime (it is in the model's text meta). A missing description is a zero
# block, which changes no score, so catalogs with and without descriptions share one feature space.
DEFAULT_FIELDS = ("categories", "year", "description")
TEXT_FORMAT = "advrec.item_text/1"  # bump when the wording of item_text / item_field changes


def item_text(row: dict | pd.Series) -> str:
    """'Title (year). Genres: A, B. description' (missing parts left out): the one-string variant."""
    title = str(row["title"]).strip()
    year = row.get("year")
    head = f"{title} ({int(year)})" if year is not None and not pd.isna(year) else title
    parts = [head]
    categories = row.get("categories") or ()
    if len(categories):
        parts.append("Genres: " + ", ".join(categories))
    description = str(row.get("description") or "").strip()
    if description:
        parts.append(description)
    return ". ".join(p.rstrip(".") for p in parts if p) + "."


def item_field(row: dict | pd.Series, field: str) -> str:
    """One field as a short sentence ("" when missing); 'text' is the whole `item_text`."""
    if field == "text":
        return item_text(row)
    if field == "title":
        return str(row["title"]).strip()
    if field == "categories":
        # "Genres:" is the wording validated on MovieLens (docs/text.md); it reads as well for products.
        categories = row.get("categories") or ()
        return ("Genres: " + ", ".join(categories) + ".") if len(categories) else ""
    if field == "year":
        year = row.get("year")
        return "" if year is None or pd.isna(year) else f"Released in {int(year)}."
    if field == "description":
        return str(row.get("description") or "").strip()
    raise KeyError(f"unknown field {field!r}; one of {FIELDS}")


def encode_items(
    encoder: TextEncoder, catalog: pd.DataFrame, fields: tuple[str, ...] = DEFAULT_FIELDS
) -> tuple[np.ndarray, dict[str, Any]]:
    """(vectors, meta) of a catalog frame, row-aligned; `meta` names the feature space.

    meta = {name, version, dim, fields, text_format}: log it with the model, and never mix vectors
    whose meta differs (the hybrid model refuses them).
    """
    records = catalog.to_dict("records")
    blocks = []
    for field in fields:
        texts = [item_field(r, field) for r in records]
        out = np.zeros((len(texts), encoder.dim), np.float32)
        present = [k for k, t in enumerate(texts) if t.strip()]
        if present:
            out[present] = encoder.encode([texts[k] for k in present])
        blocks.append(out)
    x = l2_normalise(np.hstack(blocks) if blocks else np.zeros((len(records), 0), np.float32))
    meta = {
        "name": encoder.name,
        "version": encoder.version,
        "dim": int(x.shape[1]),
        "fields": list(fields),
        "text_format": TEXT_FORMAT,
    }
    return x, meta


def category_matrix(
    catalog: pd.DataFrame, year_buckets: tuple[int, ...] = (1960, 1980, 1990, 1994, 1996, 1997)
) -> tuple[np.ndarray, list[str]]:
    """One-hot categories + year bucket: the metadata-popularity baseline's features (no language model)."""
    categories = sorted({c for cs in catalog["categories"] for c in cs})
    edges = list(year_buckets)
    names = (
        [f"category={c}" for c in categories]
        + [f"year<{edges[0]}"]
        + [f"year>={a}" if b is None else f"{a}<=year<{b}" for a, b in zip(edges, edges[1:] + [None])]
        + ["year=?"]
    )
    x = np.zeros((len(catalog), len(names)), np.float32)
    column = {c: k for k, c in enumerate(categories)}
    for r, (cs, y) in enumerate(zip(catalog["categories"], catalog["year"])):
        for c in cs:
            x[r, column[c]] = 1.0
        if pd.isna(y):
            x[r, -1] = 1.0
        else:
            x[r, len(categories) + int(np.searchsorted(edges, int(y), side="right"))] = 1.0
    return x, names
