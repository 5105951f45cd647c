"""Keeping the served model on the registry's champion: load in a thread, fully, then swap in one assignment.

A promotion announced on `model.updates`, or the periodic alias check, triggers a load. MLflow
being down or a corrupt version never stops serving: the current model stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from streams.kafka.tail import tail_topics
from streams.serving import metrics
from streams.serving.core import ScorerCore, ServingModel

__all__ = ["ModelWatcher"]

log = logging.getLogger(__name__)


class ModelWatcher:
    """Keeps `core.model` on the registry's champion (or the alias given): load in a thread, then swap."""

    def __init__(self, core: ScorerCore, registry: Any, alias: str = "champion") -> None:
        self.core, self.registry, self.alias = core, registry, alias
        self.refused: set[int] = set()
        self.wake = asyncio.Event()

    def load_if_changed(self) -> ServingModel | None:
        """(Blocking) the champion as a ServingModel if it differs from the served one, else None."""
        from registry.errors import CorruptModelError, RegistryError

        current = self.core.model.version if self.core.model is not None else None
        try:
            version = self.registry.alias_version(self.alias)
            if version is None or version == current or version in self.refused:
                return None
            model = self.registry.load_version(version)
            serving = ServingModel.from_recommender(model, version)
            # When the newest events this version learnt from first arrived: freshness starts there.
            oldest = self.registry.version_tags(version).get("lineage.oldest_arrival")
            serving.oldest_arrival = float(oldest) if oldest not in (None, "", "null") else None
            return serving
        except CorruptModelError as exc:
            self.refused.add(version)
            log.error("refusing champion version %s, still serving %s: %s", version, current, exc)
        except RegistryError as exc:
            log.warning("MLflow unavailable, still serving version %s: %s", current, exc)
        except Exception as exc:  # noqa: BLE001 - a bad model must not stop serving
            log.error("could not load the champion, still serving version %s: %s", current, exc)
        return None

    def install(self, serving: ServingModel | None, count: bool = True) -> bool:
        """Swap a fully built model in (event loop side); count (unless the start-up load) and export it."""
        if serving is None:
            return False
        old = self.core.swap(serving)
        if count:
            metrics.MODEL_SWAPS.inc()
        metrics.SERVING_VERSION.set(serving.version)
        log.warning("serving model version %d (was %s)", serving.version, old.version if old else "popularity")
        return True

    async def run(self, poll_s: float) -> None:
        """Reload on a wake-up (a `model.updates` record) or every poll_s seconds."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=poll_s)
            self.wake.clear()
            self.install(await loop.run_in_executor(None, self.load_if_changed))

    async def follow_updates(self, bootstrap: str, topic: str, model_name: str) -> None:
        """Wake up on every new `model.updates` record for our model (group-less: every scorer sees all)."""

        def apply(_topic: str, _key: bytes | None, value: bytes | None) -> None:
            try:
                update = json.loads(value or b"")
            except ValueError:
                return
            if isinstance(update, dict) and update.get("model_name") == model_name:
                log.warning("model update: %s", update)
                self.wake.set()

        await tail_topics(bootstrap, [topic], apply, "advrec-scorer-updates", refresh_s=2.0, from_end=True)
