"""Baseline for benchmarks/ingest.py: a Faust agent that takes batches and does nothing else.

    python benchmarks/bare_faust_agent.py BOOTSTRAP TOPIC TOTAL WEB_PORT [advrec]

Prints `rate <events/s>` once it has consumed TOTAL records: what Faust's own stream machinery
allows an agent that does nothing on this machine. With `advrec`, the agent runs as advrec runs its
Faust apps (`streams.kafka.faust_app.AdvrecApp`, its consumer's fetch bounds, and `run_worker`:
its patches of Faust, among them `eager_delivery`, its garbage-collection and logger settings)
and with the ingest agent's stream buffer: the worker's own ground, beside stock Faust.
"""

import os
import sys
import tempfile
import time

import faust

bootstrap, topic, total, web_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
as_advrec = sys.argv[5:] == ["advrec"]
if as_advrec:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    from streams.kafka.faust_app import AdvrecApp as App
else:
    App = faust.App
app = App(
    f"bare-{time.time()}",
    broker=f"kafka://{bootstrap}",
    store="memory://",
    # Faust makes `<id>-data/` under its datadir; keep it out of the working tree.
    datadir=tempfile.mkdtemp(prefix="advrec-bare-faust-"),
    web_port=web_port,
    web_bind="127.0.0.1",
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    broker_rebalance_timeout=6,
    # the worker's buffers: Faust's app-wide one, and its ingest agent's (ADVREC_EVENTS_BUFFER_RECORDS)
    stream_buffer_maxsize=20_000 if as_advrec else 10_000,
    broker_max_poll_records=5_000,
)
source = app.topic(topic, value_type=bytes, value_serializer="raw", key_serializer="raw")
state = {"seen": 0, "started": 0.0}


@app.agent(source)
async def count(stream):
    async for events in stream.take_events(5_000, within=0.5):
        if not state["seen"]:
            state["started"] = time.perf_counter()
        state["seen"] += len(events)
        if state["seen"] >= total:
            rate = (state["seen"] - len(events)) / max(time.perf_counter() - state["started"], 1e-9)
            sys.__stdout__.write(f"rate {rate:.0f}\n")
            sys.__stdout__.flush()
            os._exit(0)  # stopping the app from inside its own agent would wait on this agent


if __name__ == "__main__":
    if as_advrec:
        from streams.kafka.faust_app import run_worker

        run_worker(app, "warning")
    else:
        sys.argv = [sys.argv[0], "worker", "-l", "warn"]
        app.main()
