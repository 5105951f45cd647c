"""Two workers on four partitions, one killed -9 mid-stream and restarted: the stream stays up.

On the Tansu broker used before, this crashed *both* workers with Faust's ConsistencyError (short
end offsets meet partitions moving between workers). On Apache Kafka neither may crash, and every
event must still be applied once.
"""

from __future__ import annotations

import threading
import urllib.error

import pytest

from streams.kafka.producer import produce_events
from streams.sources.simulator import simulated_events
from tests.integration.conftest import wait_for
from tests.integration.worker.test_worker import _processed, _profile, _worker

pytestmark = pytest.mark.integration

CRASH_MARKS = ("ConsistencyError", "Crashed reason", "Traceback")


def test_two_workers_one_killed_9_and_restarted_neither_crashes(kafka_broker, tmp_path):
    events = list(simulated_events(n_events=6000, n_users=150, n_items=400, seed=5))
    users = sorted({e["user_id"] for e in events})
    first, base_a = _worker(tmp_path / "a", kafka_broker, "pair", "pair-events")
    second, base_b = _worker(tmp_path / "b", kafka_broker, "pair", "pair-events")
    producer = threading.Thread(
        target=produce_events, args=(kafka_broker, "pair-events", events), kwargs={"rate": 1_500.0}
    )
    try:
        first.start().wait_http(f"{base_a}/metrics")
        second.start().wait_http(f"{base_b}/metrics")
        producer.start()
        wait_for(
            lambda: _processed(base_a) + _processed(base_b) >= len(events) // 3, 90, "a third processed", first, second
        )
        first.kill9()
        first.start()
        first.wait_http(f"{base_a}/metrics")
        producer.join()

        def all_applied(base: str):
            try:
                profiles = [_profile(base, user) for user in users]
            except urllib.error.HTTPError as exc:
                if exc.code in (503, 500, 502):  # a table still recovering, or the route moving
                    return False
                raise
            return sum(p["events"] for p in profiles if p) == len(events)

        wait_for(
            lambda: all_applied(base_a) and all_applied(base_b),
            180,
            "every event applied, seen from both",
            first,
            second,
        )
        assert first.process.poll() is None and second.process.poll() is None
        # The restarted worker's log starts at its restart; the survivor's covers the whole rebalance.
        for process in (first, second):
            log = process.log_path.read_text(errors="replace")
            assert not [mark for mark in CRASH_MARKS if mark in log], process.log_tail(60)
    finally:
        first.stop()
        second.stop()
        if producer.is_alive():
            producer.join()
