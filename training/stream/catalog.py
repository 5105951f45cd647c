"""The trainer's view of the item catalog: the latest valid entry per item, and which changed since the last round.

Fed from the worker's catalog changelog (valid entries only; a None value deletes an item) by the
batch source. `take_changed` hands a round the entries to (re-)encode; `restore` puts them back
when the round fails, so no entry is lost to a failed round. A deleted item keeps the text row
its model already has (a model never forgets an item). Pure: no Kafka, no encoder.
"""

from __future__ import annotations

from collections.abc import Iterable

from streams.contract.records import CatalogEntry

__all__ = ["ItemCatalog", "CatalogUpdate"]

CatalogUpdate = tuple[str, CatalogEntry | None]  # (item_id, entry); None = deleted


class ItemCatalog:
    """The latest entry per item and the ids changed since the last `take_changed`."""

    def __init__(self) -> None:
        self.entries: dict[str, CatalogEntry] = {}
        self.changed: set[str] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def apply(self, updates: Iterable[CatalogUpdate]) -> None:
        """Fold changelog records in; an entry equal to the one held changes nothing."""
        for item_id, entry in updates:
            if entry is None:
                self.entries.pop(item_id, None)
                self.changed.discard(item_id)
            elif self.entries.get(item_id) != entry:
                self.entries[item_id] = entry
                self.changed.add(item_id)

    def take_changed(self) -> list[CatalogEntry]:
        """The entries changed since the last call (sorted by item id), and forget that they changed."""
        taken = [self.entries[i] for i in sorted(self.changed) if i in self.entries]
        self.changed = set()
        return taken

    def restore(self, entries: Iterable[CatalogEntry]) -> None:
        """Mark entries changed again (their round failed)."""
        self.changed.update(e.item_id for e in entries)
