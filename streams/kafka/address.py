"""Where the broker is: `ADVREC_KAFKA_BOOTSTRAP`, or the embedded one announced in `DATA_DIR/broker.json`.

`advrec broker` announces itself (address and engine) and withdraws on exit; every other process
resolves the address here, and learns whether Tansu's workarounds apply.
"""

from __future__ import annotations

import json
from pathlib import Path

from streams.contract.errors import UserError
from streams.contract.settings import Settings

__all__ = ["NoBroker", "broker_file", "announce", "withdraw", "resolve_bootstrap", "tansu_workarounds"]


class NoBroker(UserError):
    """Neither ADVREC_KAFKA_BOOTSTRAP nor an announced embedded broker."""


def broker_file(settings: Settings) -> Path:
    """Where `advrec broker` announces itself."""
    return settings.data_dir / "broker.json"


def announce(settings: Settings, bootstrap: str, engine: str) -> Path:
    """Write the announcement of a running embedded broker."""
    path = broker_file(settings)
    path.write_text(json.dumps({"bootstrap": bootstrap, "engine": engine}))
    return path


def withdraw(settings: Settings) -> None:
    """Remove the announcement (the broker is stopping)."""
    broker_file(settings).unlink(missing_ok=True)


def _announced(settings: Settings) -> dict | None:
    path = broker_file(settings)
    return json.loads(path.read_text()) if path.exists() else None


def resolve_bootstrap(settings: Settings) -> str:
    """The broker to use: ADVREC_KAFKA_BOOTSTRAP, else the one `advrec broker` announced."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    announced = _announced(settings)
    if announced:
        return announced["bootstrap"]
    raise NoBroker("no broker: set ADVREC_KAFKA_BOOTSTRAP=host:port, or start the embedded one with `advrec broker`")


def tansu_workarounds(settings: Settings) -> bool:
    """Whether the clients must work around Tansu: as configured, else when the announced broker is Tansu."""
    if settings.tansu_workarounds is not None:
        return settings.tansu_workarounds
    if settings.kafka_bootstrap:
        return False
    announced = _announced(settings)
    return bool(announced and announced.get("engine") == "tansu")
