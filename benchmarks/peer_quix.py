"""The peer a user would pick instead of Faust: a quix-streams app keeping a per-user event count in
its state store (RocksDB, with a changelog topic), as the advrec worker keeps per-user profiles.

    <python with quixstreams> benchmarks/peer_quix.py BOOTSTRAP TOPIC TOTAL

Prints `first` at its first message, then `rate <events/s> cpu <µs/event>` from its first to
its TOTAL-th message (this process's CPU, every thread: librdkafka's and RocksDB's included).
Run by benchmarks/ingest.py with --peer-python; it needs its own environment (quixstreams pins
confluent-kafka and rocksdict).
"""

from __future__ import annotations

import sys
import tempfile
import time

from quixstreams import Application


def main() -> None:
    bootstrap, topic_name, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seen = {"n": 0, "t0": None, "cpu0": None}
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
                seen["t0"], seen["cpu0"] = time.perf_counter(), time.process_time()
                print("first", flush=True)
            seen["n"] += 1
            if seen["n"] >= total:
                rate = seen["n"] / (time.perf_counter() - seen["t0"])
                cpu = 1e6 * (time.process_time() - seen["cpu0"]) / seen["n"]
                print(f"rate {rate:.0f} cpu {cpu:.2f}", flush=True)
                app.stop()
            return value

        frame.update(count, stateful=True)
        app.run()


if __name__ == "__main__":
    main()
