"""The item agent: exact per-item statistics in the item-keyed `items` table, and `GET /items/{item_id}`.

Reads `items.deltas` (partitioned by item, so each item has one owner) and folds each delta into
its item's `ItemStats`, which applies every source offset once. The table's changelog is what the
scorer tails for popularity. It must never read raw events: ingest has validated them.
"""

from __future__ import annotations

import faust
import msgspec

from streams.contract.records import ItemDeltas
from streams.contract.settings import Settings
from streams.kafka.faust_app import processing, table_view
from streams.worker import metrics
from streams.worker.items import ItemStats

__all__ = ["install"]

_DECODER = msgspec.json.Decoder(ItemDeltas)
_STATS = msgspec.json.Decoder(ItemStats)  # the table holds ItemStats as JSON bytes


def install(app: faust.App, settings: Settings, topology) -> None:
    """Add the item agent and the item view to the worker's app."""
    items = topology.items
    intake = metrics.STAGE_EVENTS.labels("items")

    @app.agent(topology.item_deltas, name="items")
    async def fold_items(stream):
        """Fold each batch's item deltas into the item table (the deltas are ingest's own output)."""
        async for events in stream.take_events(500, within=settings.batch_max_seconds):
            async with processing(app, events, topology.changelogs, "items") as events:
                changed: dict[str, ItemStats] = {}
                applied = 0
                for event in events:
                    for delta in _DECODER.decode(event.value).deltas:
                        stats = changed.get(delta.item_id)
                        if stats is None:
                            stored = items.get(delta.item_id.encode())
                            stats = _STATS.decode(stored) if stored else ItemStats(delta.item_id)
                        new = stats.update(delta)
                        if new:
                            changed[delta.item_id] = stats
                            applied += new
                await topology.changelogs.write(
                    app, items, {item_id.encode(): msgspec.json.encode(stats) for item_id, stats in changed.items()}
                )
            metrics.ITEM_UPDATES.inc(len(changed))
            intake.inc(applied)

    @table_view(app, "/items/{item_id}", items, match_info="item_id")
    async def item_view(web, request, item_id: str):
        """The statistics of one item as JSON, 404 if the item was never seen."""
        stored = items.get(item_id.encode())
        if stored is None:
            return web.json({"error": f"unknown item {item_id!r}"}, status=404)
        return web.json(_STATS.decode(stored).view())
