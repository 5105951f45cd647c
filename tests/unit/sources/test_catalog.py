"""Catalog readers: MovieLens u.item (latin-1), movies.csv, any CSV with a column map; records both ways."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from streams.contract.errors import UserError
from streams.contract.records import CatalogEntry, decode, encode
from streams.sources.catalog import (
    catalog_entries,
    catalog_frame,
    clean_title,
    read_catalog,
    read_catalog_table,
    read_ml100k_items,
    read_movies_csv,
)
from tests.paths import DATA

FIXTURES = Path(__file__).parent / "fixtures"


def test_clean_title():
    assert clean_title("Usual Suspects, The (1995)") == ("The Usual Suspects", 1995)
    assert clean_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)") == (
        "The City of Lost Children (Cité des enfants perdus, La)",
        1995,
    )
    assert clean_title("Heat") == ("Heat", None)
    assert clean_title("Babylon 5 (1994-1998)") == ("Babylon 5", 1994)


def test_movies_csv():
    c = read_movies_csv(FIXTURES / "movies.csv")
    assert list(c.columns) == ["item", "title", "year", "categories", "description"]
    assert c["item"].tolist() == ["1", "2", "3", "4", "5"]
    assert c.loc[1, "title"] == "The American President" and c.loc[1, "year"] == 1995
    assert c.loc[0, "categories"] == ("Adventure", "Animation", "Children", "Comedy", "Fantasy")
    assert c.loc[3, "categories"] == () and pd.isna(c.loc[3, "year"])


def test_ml100k_u_item_latin1():
    c = read_ml100k_items(FIXTURES / "u.item")
    assert c["item"].tolist() == ["10", "11", "12"]
    assert c.loc[0, "title"] == "The Alpha Movie" and c.loc[0, "categories"] == ("Action", "Comedy")
    assert c.loc[1, "title"] == "Beta Café" and c.loc[1, "year"] == 1996
    assert c.loc[2, "categories"] == () and pd.isna(c.loc[2, "year"])  # 'unknown' genre is dropped


def test_the_real_ml100k_catalog():
    c = read_catalog(DATA / "movielens-100k" / "u.item")
    assert len(c) == 1682 and c["item"].is_unique
    assert c.loc[0, "title"] == "Toy Story" and c.loc[0, "categories"] == ("Animation", "Children's", "Comedy")


def test_any_csv_with_a_map(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(
        "sku,name,text,tags,launched\nA1,Kettle,Boils water fast.,kitchen|electric,2021\nB2,Mug,,kitchen,n/a\n"
    )
    c = read_catalog(
        path, {"item_id": "sku", "title": "name", "description": "text", "categories": "tags", "year": "launched"}
    )
    assert c["item"].tolist() == ["A1", "B2"]
    assert c.loc[0, "categories"] == ("kitchen", "electric") and c.loc[0, "description"] == "Boils water fast."
    assert c.loc[0, "year"] == 2021 and pd.isna(c.loc[1, "year"])
    with pytest.raises(UserError, match="item_id"):
        read_catalog_table(path, {"title": "name"})
    with pytest.raises(UserError, match="no column"):
        read_catalog_table(path, {"item_id": "id"})
    with pytest.raises(UserError, match="--map"):
        read_catalog(tmp_path / "catalog.parquet")


def test_entries_round_trip_through_the_wire():
    c = read_movies_csv(FIXTURES / "movies.csv")
    entries = catalog_entries(c)
    assert entries[0] == CatalogEntry(
        "1", "Toy Story", "", ["Adventure", "Animation", "Children", "Comedy", "Fantasy"], 1995
    )
    wired = [decode(encode(e), CatalogEntry) for e in entries]
    back = catalog_frame(wired)
    pd.testing.assert_frame_equal(back, c)
