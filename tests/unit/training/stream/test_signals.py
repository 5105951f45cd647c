"""Stop signals wait for a deferred section to end, and stop at once outside one."""

from __future__ import annotations

import signal

import pytest

from training.stream.signals import StopSignals


@pytest.fixture
def signals():
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield StopSignals().install()
    for s, handler in before.items():
        signal.signal(s, handler)


def test_a_sigterm_inside_a_section_is_raised_when_it_ends(signals):
    done = []
    with pytest.raises(SystemExit) as stopped, signals.deferred():
        signal.raise_signal(signal.SIGTERM)
        done.append("registered")
        with signals.deferred():  # nested: still held until the outer section ends
            done.append("saved")
        done.append("after the inner section")
    assert done == ["registered", "saved", "after the inner section"]
    assert stopped.value.code == 128 + signal.SIGTERM and signals.pending is None


def test_a_sigint_inside_a_section_is_a_keyboard_interrupt_at_its_end(signals):
    with pytest.raises(KeyboardInterrupt), signals.deferred():
        signal.raise_signal(signal.SIGINT)


def test_outside_a_section_a_stop_signal_stops_at_once(signals):
    with pytest.raises(SystemExit):
        signal.raise_signal(signal.SIGTERM)
    with signals.deferred():
        pass  # nothing pending: the section ends quietly
