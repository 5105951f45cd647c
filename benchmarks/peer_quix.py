"""The peer a user would pick instead of Faust: a quix-streams app keeping a per-user event count in
its state store (RocksDB, with a changelog topic), as the advrec worker keeps per-user profiles.

    <python with quixstreams> benchmarks/peer_quix.py BOOTSTRAP TOPIC TOTAL

Prints `rate <events/s>` from its first to its TOTAL-th message. Run by benchmarks/ingest.py with
--peer-python; it needs its own environment (quixstreams pins confluent-kafka and rocksdict).
"""

from __future__ import annotations

import sys
import tempfile
import time

from quixstreams import Application


def main() -> None:
    bootstrap, topic_name, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seen = {"n": 0, "t0": None}
    with tempfile.TemporaryDirectory() as state_dir:
        app = Application(
            broker_address=bootstrap,
            consumer_group=f"peer-{time.time()}",
            auto_offset_reset="earliest",
            state_dir=state_dir,
        )
        topic = app.topic(topic_name, value_deserializer="json", key_deserializer="str")
        frame = app.dataframe(topic)

        def count(value: dict, state) -> dict:
            state.set("events", state.get("events", 0) + 1)
            if seen["t0"] is None:
                seen["t0"] = time.perf_counter()
            seen["n"] += 1
            if seen["n"] >= total:
                print(f"rate {seen['n'] / (time.perf_counter() - seen['t0']):.0f}", flush=True)
                app.stop()
            return value

        frame.update(count, stateful=True)
        app.run()


if __name__ == "__main__":
    main()
