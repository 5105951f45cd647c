"""Item catalogs as users have them: MovieLens `u.item`, the ml-latest family's `movies.csv`, any CSV.

One frame shape for every catalog (`CATALOG_COLUMNS`): `item` (str id, the same ids as the
interactions' items), `title` (trailing "(year)" removed, ", The" style articles moved to the
front), `year` (Int64, <NA> when unknown), `categories` (tuple of str), `description` (str, "" when
the catalog has none). `catalog_entries` turns a frame into the `catalog` topic's records and
`catalog_frame` turns records back into a frame. Pure: reads only the paths it is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from streams.contract.errors import UserError
from streams.contract.records import CatalogEntry

__all__ = [
    "CATALOG_COLUMNS",
    "CATALOG_FIELDS",
    "ML100K_GENRES",
    "clean_title",
    "read_ml100k_items",
    "read_movies_csv",
    "read_catalog_table",
    "read_catalog",
    "catalog_entries",
    "catalog_frame",
]

CATALOG_COLUMNS = ["item", "title", "year", "categories", "description"]
# What `--map` may name for a generic CSV (item_id is required).
CATALOG_FIELDS = ("item_id", "title", "description", "categories", "year")

ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]

_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_ARTICLE = re.compile(
    r"^(?P<rest>.+), (?P<art>The|A|An|Les|La|Le|L'|Il|Das|Der|Die|El|Los|Las|Det|Den)(?P<tail>\s*\(.*\))?$"
)
_NO_CATEGORY = {"", "unknown", "(no genres listed)"}


def clean_title(raw: str) -> tuple[str, int | None]:
    """("Usual Suspects, The (1995)") -> ("The Usual Suspects", 1995); year None when absent."""
    title = (raw or "").strip()
    year = None
    m = _YEAR.search(title)
    if m:
        year = int(m.group(1))
        title = title[: m.start()].strip()
    a = _ARTICLE.match(title)
    if a:  # "City of Lost Children, The (Cité des enfants perdus, La)" -> "The City of ... (...)"
        sep = "" if a.group("art").endswith("'") else " "
        title = f"{a.group('art')}{sep}{a.group('rest')}{a.group('tail') or ''}"
    return title, year


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=CATALOG_COLUMNS)
    df["item"] = df["item"].astype(str)
    df["year"] = df["year"].astype("Int64")
    df["description"] = df["description"].fillna("").astype(str)
    return df.reset_index(drop=True)


def read_ml100k_items(path: str | Path, genre_path: str | Path | None = None) -> pd.DataFrame:
    """MovieLens 100K `u.item` ('|'-separated, latin-1, 19 genre flags) as a catalog frame.

    The year comes from the release date (dd-Mon-yyyy), else from the title's "(yyyy)"; the genre
    names from `u.genre` when given (else the 100K's fixed list).
    """
    names = ML100K_GENRES
    if genre_path is not None:
        pairs = [ln.split("|") for ln in Path(genre_path).read_text(encoding="latin-1").splitlines() if ln.strip()]
        names = [name for name, _ in sorted(pairs, key=lambda x: int(x[1]))]
    rows = []
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            f = line.rstrip("\n").split("|")
            if len(f) < 5 + len(names):
                continue
            title, title_year = clean_title(f[1])
            date = f[2].strip()
            year = int(date[-4:]) if re.fullmatch(r".*\d{4}", date) else title_year
            flags = f[5 : 5 + len(names)]
            genres = tuple(n for n, v in zip(names, flags) if v.strip() == "1" and n not in _NO_CATEGORY)
            rows.append({"item": f[0].strip(), "title": title, "year": year, "categories": genres, "description": ""})
    return _frame(rows)


def read_movies_csv(path: str | Path) -> pd.DataFrame:
    """ml-latest / ml-25m style `movies.csv` (movieId,title,genres; quoted titles; UTF-8).

    A `description`, `overview` or `plot` column, where a richer export has one, fills `description`.
    """
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    cols = {c.strip().lower(): c for c in raw.columns}
    missing = {"movieid", "title", "genres"} - set(cols)
    if missing:
        raise UserError(f"{path}: not a movies.csv, missing columns {sorted(missing)}")
    desc_col = next((cols[c] for c in ("description", "overview", "plot") if c in cols), None)
    rows = []
    for rec in raw.to_dict("records"):
        title, year = clean_title(rec[cols["title"]])
        genres = tuple(g.strip() for g in rec[cols["genres"]].split("|") if g.strip() not in _NO_CATEGORY)
        desc = rec[desc_col] if desc_col else ""
        rows.append(
            {
                "item": rec[cols["movieid"]].strip(),
                "title": title,
                "year": year,
                "categories": genres,
                "description": desc,
            }
        )
    return _frame(rows)


def read_catalog_table(path: str | Path, mapping: dict[str, str]) -> pd.DataFrame:
    """Any CSV with a header: `mapping` names its columns (item_id=COL[,title=,description=,categories=,year=]).

    Categories are split on '|' (as MovieLens writes them); a year that is not an integer is unknown.
    """
    unknown = set(mapping) - set(CATALOG_FIELDS)
    if unknown or "item_id" not in mapping:
        raise UserError(
            f"--map: item_id=COLUMN is required; fields are {', '.join(CATALOG_FIELDS)} (got {sorted(mapping)})"
        )
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    absent = [c for c in mapping.values() if c not in raw.columns]
    if absent:
        raise UserError(f"{path}: no column(s) {absent}; it has {list(raw.columns)}")
    columns = {field: raw[column].str.strip() if field in mapping else None for field, column in mapping.items()}
    blank = pd.Series([""] * len(raw), dtype=str)
    get = {field: columns.get(field, blank).tolist() for field in CATALOG_FIELDS}
    rows = [
        {
            "item": item,
            "title": title,
            "year": int(year) if year.isdigit() else None,
            "categories": tuple(c.strip() for c in categories.split("|") if c.strip() not in _NO_CATEGORY),
            "description": description,
        }
        for item, title, description, categories, year in zip(*(get[f] for f in CATALOG_FIELDS))
    ]
    return _frame(rows)


def read_catalog(path: str | Path, mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """A catalog file as a frame: `--map` for a generic CSV, else `u.item` or `movies.csv` by name."""
    if mapping:
        return read_catalog_table(path, mapping)
    name = Path(path).name.lower()
    if name.startswith("u.item"):
        genre = Path(path).with_name("u.genre")
        return read_ml100k_items(path, genre if genre.exists() else None)
    if name.endswith(".csv"):
        return read_movies_csv(path)
    raise UserError(f"{path}: not u.item or movies.csv; give --map item_id=COLUMN,... for another CSV")


def catalog_entries(frame: pd.DataFrame) -> list[CatalogEntry]:
    """The `catalog` topic's records of a catalog frame, in row order."""
    return [
        CatalogEntry(
            item_id=str(r["item"]),
            title=str(r["title"] or ""),
            description=str(r["description"] or ""),
            categories=list(r["categories"]),
            year=None if pd.isna(r["year"]) else int(r["year"]),
        )
        for r in frame.to_dict("records")
    ]


def catalog_frame(entries: Iterable[CatalogEntry]) -> pd.DataFrame:
    """A catalog frame of records (the inverse of `catalog_entries`)."""
    return _frame(
        [
            {
                "item": e.item_id,
                "title": e.title,
                "year": e.year,
                "categories": tuple(e.categories),
                "description": e.description,
            }
            for e in entries
        ]
    )
