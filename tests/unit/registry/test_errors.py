"""The registry's errors: callers catch RegistryError for every one of them."""

from __future__ import annotations

from registry.errors import CorruptModelError, RegistryError, RegistryUnavailable


def test_every_registry_error_is_a_registry_error():
    assert issubclass(RegistryUnavailable, RegistryError) and issubclass(CorruptModelError, RegistryError)
    assert issubclass(RegistryError, RuntimeError)
    assert not issubclass(CorruptModelError, RegistryUnavailable)
