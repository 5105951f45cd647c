"""What every advrec Faust app shares: broker options, the `/metrics` page, and how a worker process runs.

Both Faust apps (the stream worker and the scorer) are built from these, so the broker's quirks,
group timeouts and the processing guarantee are decided in one place.
"""

from __future__ import annotations

import socket
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.contract.settings import Settings

__all__ = ["app_options", "processing_guarantee", "add_metrics_page", "run_worker"]


def processing_guarantee(settings: Settings, tansu_workarounds: bool) -> str:
    """Faust's processing guarantee: as configured, but at-least-once on Tansu (it has no transactions)."""
    if settings.processing_guarantee not in ("at_least_once", "exactly_once"):
        raise ValueError(
            f"processing_guarantee must be at_least_once or exactly_once, not {settings.processing_guarantee!r}"
        )
    return "at_least_once" if tansu_workarounds else settings.processing_guarantee


def app_options(
    settings: Settings,
    bootstrap: str,
    tansu_workarounds: bool,
    web_port: int,
    datadir: str,
    guarantee: str = "at_least_once",
    tables: bool = True,
) -> dict[str, Any]:
    """Keyword arguments of `faust.App` for an advrec process against `bootstrap` (host:port[,...])."""
    # A crashed member holds its partitions until its session times out (Faust's default: 60 s).
    quirks: dict[str, Any] = dict(
        broker_session_timeout=settings.group_session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.group_session_timeout_s / 4),
    )
    if tansu_workarounds:
        # Tansu's group join waits half the session timeout: keep it short.
        quirks = dict(broker_session_timeout=6, broker_heartbeat_interval=1, broker_rebalance_timeout=6)
        if tables:
            # Tansu reports a partition's end offset as its last *batch's* base offset + 1, so Faust
            # would stop changelog recovery short: one record per batch keeps end offsets exact.
            # (An app without tables skips it: it caps sends at one round trip each.)
            quirks["producer_max_batch_size"] = 1
    return dict(
        broker=",".join(f"kafka://{host}" for host in bootstrap.split(",")),
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=guarantee,
        web_enabled=True,
        web_bind=settings.web_bind,
        web_host=settings.web_host or socket.gethostname(),
        web_port=web_port,
        datadir=datadir,
        **quirks,
    )


def add_metrics_page(app: faust.App) -> None:
    """Serve this process's Prometheus metrics at `/metrics`."""

    @app.page("/metrics")
    async def metrics_view(web, request):
        """Prometheus exposition of this process's metrics."""
        # aiohttp refuses a charset inside content_type; the exposition format is ASCII anyway.
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.replace("; charset=utf-8", ""))


def run_worker(app: faust.App, loglevel: str) -> None:
    """Run `app` in this process until it is stopped (SIGTERM/SIGINT), as `faust worker` would."""

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger, level: int) -> None:
            # mode leaves the root logger at DEBUG and filters in the handler, so every debug
            # call in aiokafka/faust builds a LogRecord: ~8% of the worker's CPU.
            super().on_setup_root_logger(logger, level)
            logger.setLevel(level)

    Worker(app, loglevel=loglevel.upper(), quiet=True).execute_from_commandline()
