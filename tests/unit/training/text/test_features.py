"""Item fields and field-wise item vectors."""

from __future__ import annotations

import numpy as np

from streams.sources.catalog import read_movies_csv
from tests.unit.sources.test_catalog import FIXTURES
from training.text.encoders import HashingEncoder
from training.text.features import category_matrix, encode_items, item_field, item_text


def test_item_fields_and_one_string_text():
    c = read_movies_csv(FIXTURES / "movies.csv")
    assert item_text(c.loc[0]) == "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy."
    assert item_text(c.loc[3]) == "Some Untitled Film."
    assert item_field(c.loc[0], "year") == "Released in 1995." and item_field(c.loc[3], "year") == ""
    assert (
        item_field(c.loc[3], "categories") == ""
        and item_field(c.loc[1], "categories") == "Genres: Comedy, Drama, Romance."
    )


def test_encode_items_fieldwise():
    c = read_movies_csv(FIXTURES / "movies.csv")
    enc = HashingEncoder(8)
    x, meta = encode_items(enc, c, ("title", "categories", "year"))
    assert x.shape == (5, 24) and x.dtype.name == "float32"
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    assert not x[3, 8:].any()  # no categories, no year: zero blocks
    assert meta == {
        "name": "hashing",
        "version": "1/8",
        "dim": 24,
        "fields": ["title", "categories", "year"],
        "text_format": "advrec.item_text/1",
    }
    one, _ = encode_items(enc, c, ("text",))
    np.testing.assert_allclose(one, enc.encode([item_text(r) for r in c.to_dict("records")]), rtol=1e-6)


def test_an_empty_description_block_changes_no_vector():
    c = read_movies_csv(FIXTURES / "movies.csv")
    enc = HashingEncoder(8)
    with_block, _ = encode_items(enc, c, ("categories", "year", "description"))
    without, _ = encode_items(enc, c, ("categories", "year"))
    np.testing.assert_array_equal(with_block[:, :16], without)
    assert not with_block[:, 16:].any()


def test_category_matrix_one_hot():
    c = read_movies_csv(FIXTURES / "movies.csv")
    x, names = category_matrix(c)
    assert x.shape == (5, len(names))
    assert x[3, -1] == 1.0 and x[3].sum() == 1.0  # no categories, year unknown
    assert x[0].sum() == 6.0  # five categories and one year bucket
