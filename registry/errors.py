"""The registry's errors: what its callers catch (the scorer, the commands, the trainer).

A plain module of exception classes; it must never import mlflow or anything with side effects,
so that a caller can catch registry errors without loading the registry.
"""

from __future__ import annotations

__all__ = ["RegistryError", "RegistryUnavailable", "CorruptModelError"]


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (no previous champion, unknown version…)."""


class RegistryUnavailable(RegistryError):
    """MLflow did not answer after every retry."""


class CorruptModelError(RegistryError):
    """A registered version whose model cannot be loaded (corrupt, or not an advrec model)."""
