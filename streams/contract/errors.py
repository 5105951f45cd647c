"""Errors a user can fix by changing how they run advrec; the CLI prints them without a traceback."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """Raised for a problem the user can fix (a missing broker, a file in an unknown format…)."""
