"""Catalog records: one verdict each — an entry, a deletion, or a dead letter with its reason."""

from __future__ import annotations

import json

import pytest

from streams.contract.records import CatalogEntry, DeadLetter
from streams.worker.catalog import CATALOG_REASON_CODES, CatalogDeletion, CatalogLimits, check_catalog_record

LIMITS = CatalogLimits(max_id_length=8, max_text_chars=50)


def check(key, value):
    raw = value if value is None or isinstance(value, bytes) else json.dumps(value).encode()
    return check_catalog_record(key, raw, LIMITS, "catalog", 1, 42)


def test_a_valid_entry():
    got = check(b"i1", {"item_id": "i1", "title": "Heat", "categories": ["Crime"], "year": 1995})
    assert got == CatalogEntry("i1", "Heat", "", ["Crime"], 1995)
    assert check(None, {"item_id": "i2", "description": "A quiet film."}) == CatalogEntry(
        "i2", description="A quiet film."
    )


def test_a_tombstone_deletes_its_item():
    assert check(b"i1", None) == CatalogDeletion("i1")


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        (b"i1", b"{not json", "malformed_json"),
        (b"i1", {"title": "no id"}, "invalid_record"),
        (b"i1", {"item_id": "i1", "categories": "Crime"}, "invalid_record"),
        (b"i1", [1, 2], "invalid_record"),
        (b"", {"item_id": " ", "title": "x"}, "empty_id"),
        (None, None, "empty_id"),
        (b"i123456789", {"item_id": "i123456789", "title": "x"}, "id_too_long"),
        (b"i9", {"item_id": "i1", "title": "x"}, "key_mismatch"),
        (b"i1", {"item_id": "i1", "title": " ", "categories": []}, "no_text"),
        (b"i1", {"item_id": "i1", "description": "x" * 51}, "text_too_long"),
        (b"i1", {"item_id": "i1", "title": "x", "year": 20240}, "bad_year"),
    ],
)
def test_bad_entries_are_dead_lettered_with_their_reason(key, value, code):
    got = check(key, value)
    assert isinstance(got, DeadLetter) and got.code == code and got.reason.startswith(f"{code}: ")
    assert code in CATALOG_REASON_CODES
    assert (got.topic, got.partition, got.offset) == ("catalog", 1, 42)
