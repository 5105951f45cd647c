"""Validating `catalog` records: each raw record becomes a `CatalogEntry`, a deletion, or a dead letter.

The catalog is a compacted topic keyed by item id; a record with no value (a tombstone) deletes
its item. A bad entry never reaches the catalog table (nor the trainer, nor the scorer): it goes
to the dead-letter topic with a reason code (`CATALOG_REASON_CODES`). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from streams.contract.records import CatalogEntry, DeadLetter

__all__ = ["CATALOG_REASON_CODES", "CatalogLimits", "CatalogDeletion", "check_catalog_record"]

CATALOG_REASON_CODES = (
    "malformed_json",  # not JSON
    "invalid_record",  # JSON, but not a CatalogEntry (missing item_id, wrong types, unknown shape)
    "empty_id",
    "id_too_long",
    "key_mismatch",  # the record's key is not its item_id: compaction would keep the wrong entry
    "no_text",  # neither title, description nor categories: nothing to embed
    "text_too_long",
    "bad_year",
)
_DECODER = msgspec.json.Decoder(CatalogEntry)


@dataclass(frozen=True)
class CatalogLimits:
    """Bounds of a valid entry (from Settings)."""

    max_id_length: int = 128
    max_text_chars: int = 8_000
    min_year: int = 1800
    max_year: int = 2100


@dataclass(frozen=True)
class CatalogDeletion:
    """A tombstone: the item leaves the catalog."""

    item_id: str


def _letter(code: str, detail: str, raw: bytes | None, topic: str, partition: int, offset: int) -> DeadLetter:
    text = (raw or b"")[:4096].decode("utf-8", "replace")
    return DeadLetter(f"{code}: {detail}", code, text, topic, partition, offset)


def check_catalog_record(
    key: bytes | None, value: bytes | None, limits: CatalogLimits, topic: str, partition: int, offset: int
) -> CatalogEntry | CatalogDeletion | DeadLetter:
    """The verdict on one raw `catalog` record."""
    where = (topic, partition, offset)
    if value is None:
        if not key:
            return _letter("empty_id", "a tombstone without a key deletes nothing", value, *where)
        return CatalogDeletion(key.decode("utf-8", "replace"))
    try:
        entry = _DECODER.decode(value)
    except msgspec.ValidationError as exc:
        return _letter("invalid_record", str(exc), value, *where)
    except msgspec.DecodeError as exc:
        return _letter("malformed_json", str(exc), value, *where)
    if not entry.item_id.strip():
        return _letter("empty_id", "'item_id' is empty", value, *where)
    if len(entry.item_id) > limits.max_id_length:
        return _letter("id_too_long", f"'item_id' is longer than {limits.max_id_length}", value, *where)
    if key is not None and key.decode("utf-8", "replace") != entry.item_id:
        return _letter("key_mismatch", f"key {key[:64]!r} is not item_id {entry.item_id[:64]!r}", value, *where)
    texts = [entry.title, entry.description, *entry.categories]
    if not any(t.strip() for t in texts):
        return _letter("no_text", "no title, description or categories", value, *where)
    if sum(len(t) for t in texts) > limits.max_text_chars:
        return _letter("text_too_long", f"text longer than {limits.max_text_chars} characters", value, *where)
    if entry.year is not None and not limits.min_year <= entry.year <= limits.max_year:
        return _letter("bad_year", f"year {entry.year} not in [{limits.min_year}, {limits.max_year}]", value, *where)
    return entry
