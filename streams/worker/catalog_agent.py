"""The catalog agent: valid `catalog` entries into the item-keyed `catalog` table, bad ones dead-lettered.

`catalog` is compacted and keyed by item id with the default partitioner, and the table is keyed
the same way, so each item's entry lives on the partition that carries its records. The table's
changelog (`<app>-catalog-changelog`) holds only valid entries: it is what the trainer reads for
the hybrid models' item text. Serves `GET /catalog/{item_id}`.
"""

from __future__ import annotations

import faust
import msgspec

from streams.contract.records import CatalogEntry, DeadLetter, encode
from streams.contract.settings import Settings
from streams.kafka.faust_app import processing
from streams.worker import metrics
from streams.worker.catalog import CatalogDeletion, CatalogLimits, check_catalog_record

__all__ = ["install"]


def install(app: faust.App, settings: Settings, topology) -> None:
    """Add the catalog agent and the catalog view to the worker's app."""
    catalog = topology.catalog
    limits = CatalogLimits(max_id_length=settings.max_id_length, max_text_chars=settings.catalog_max_text_chars)

    @app.agent(topology.catalog_entries, name="catalog")
    async def fold_catalog(stream):
        """Check each catalog record; write valid entries (and deletions) to the table, dead-letter the rest."""
        async for events in stream.take_events(500, within=settings.batch_max_seconds):
            async with processing(app, events, topology.changelogs, "catalog") as events:
                letters = []
                for event in events:
                    m = event.message
                    verdict = check_catalog_record(event.key, event.value, limits, m.topic, m.partition, m.offset)
                    if isinstance(verdict, DeadLetter):
                        letters.append((None, encode(verdict)))
                        metrics.CATALOG_DEAD_LETTERS.labels(verdict.code).inc()
                    elif isinstance(verdict, CatalogDeletion):
                        catalog.pop(verdict.item_id.encode(), None)
                        metrics.CATALOG_UPDATES.labels("deleted").inc()
                    else:
                        catalog[verdict.item_id.encode()] = msgspec.to_builtins(verdict)
                        metrics.CATALOG_UPDATES.labels("written").inc()
                # followed until delivered, like the table writes, before the batch is acknowledged
                await topology.changelogs.send_records(app, topology.deadletter.get_topic_name(), letters)

    @app.page("/catalog/{item_id}")
    @app.table_route(table=catalog, match_info="item_id")
    async def catalog_view(web, request, item_id: str):
        """The catalog entry of one item as JSON, 404 if it has none."""
        stored = catalog.get(item_id.encode())
        if stored is None:
            return web.json({"error": f"no catalog entry for item {item_id!r}"}, status=404)
        return web.json(msgspec.to_builtins(msgspec.convert(stored, CatalogEntry)))
