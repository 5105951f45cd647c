"""Turning Settings into a `ModelRegistry`: the one place that wires gate bounds, retries and announcements.

Every process that registers or reads models (trainer, scorer, the registry commands) builds its
registry here.
"""

from __future__ import annotations

from streams.contract.settings import Settings

__all__ = ["build_registry"]


def _publisher(settings: Settings):
    """The `model.updates` publisher if a broker is configured or announced, else None."""
    from streams.kafka.address import NoBroker, resolve_bootstrap

    try:
        bootstrap = resolve_bootstrap(settings)
    except NoBroker:
        return None
    from registry.announcements import UpdatePublisher

    return UpdatePublisher(bootstrap, settings.model_updates_topic, settings.replication_factor)


def build_registry(settings: Settings, export_metrics: bool = False, announce: bool = True):
    """The ModelRegistry of these settings (tracking URI, model name, gate, retries, announcements)."""
    from registry.model_registry import ModelRegistry
    from registry.promotion import GateConfig

    return ModelRegistry(
        settings.mlflow_uri,
        settings.model_name,
        GateConfig.from_settings(settings),
        cache_dir=settings.data_dir / "models",
        retries=settings.mlflow_retries,
        backoff_s=settings.mlflow_retry_backoff_s,
        notify=_publisher(settings) if announce else None,
        export_metrics=export_metrics,
        promotion=settings.promotion,
    )
