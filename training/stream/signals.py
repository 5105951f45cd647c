"""Stop signals that wait for a section to end: the trainer's round commit (register, then save).

`StopSignals.install()` replaces the SIGTERM and SIGINT handlers of the process. Outside a
`deferred()` section a signal stops the process at once, as before (SIGTERM: SystemExit 143;
SIGINT: KeyboardInterrupt); inside one it is remembered and raised when the section ends, so a
stop never falls between a version's registration and the saved state that counts it. A kill -9
cannot be deferred; the registry's version is still created whole (`registry.rounds`).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StopSignals"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """SIGTERM and SIGINT handlers that hold a signal back while a `deferred()` section runs."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._depth = 0

    def install(self) -> StopSignals:
        """Handle SIGTERM and SIGINT in this process (call from the main thread); returns self."""
        for signum in _SIGNALS:
            signal.signal(signum, self._handle)
        return self

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Run the block whole: a stop signal that arrives inside it is raised once it ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self.pending is not None:
                signum, self.pending = self.pending, None
                _stop(signum)

    def _handle(self, signum: int, frame: object) -> None:
        if self._depth:
            self.pending = signum
            return
        _stop(signum)


def _stop(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)
