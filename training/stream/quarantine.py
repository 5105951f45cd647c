"""The users the fraud detector flags now, and those its trust gate trusts, folded from `fraud.flags`
records (latest record per user wins).

A round drops every event of a flagged user, new and replayed; with the trust gate on, it trains
only trusted users' events and holds the others until their account is trusted. Plain state: it must never read the
topic itself (the source hands records in) nor decide who is a fraud (the detector does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.fraud.trust import trusted_after

__all__ = ["Quarantine"]


@dataclass
class Quarantine:
    """Users flagged now, from the `fraud.flags` records seen so far (flagged=False clears)."""

    flagged: set[str] = field(default_factory=set)
    trusted: set[str] = field(default_factory=set)
    detector_version: str | None = None

    def update(self, flag: Mapping[str, Any] | None, key: str | None = None) -> None:
        """Apply one flag record; a record without a value (tombstone) clears its key's user."""
        user = str((flag or {}).get("user_id") or key or "")
        if not user:
            return
        if flag and flag.get("flagged"):
            self.flagged.add(user)
        else:
            self.flagged.discard(user)
        if trusted_after(user in self.trusted, flag):
            self.trusted.add(user)
        else:
            self.trusted.discard(user)
        if flag and flag.get("detector_version") is not None:
            self.detector_version = str(flag["detector_version"])
