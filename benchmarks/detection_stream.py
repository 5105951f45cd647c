"""Cost of fraud detection in the worker: events/s with ADVREC_FRAUD_ENABLED on vs off, same topic, same run.

    .venv/bin/python benchmarks/detection_stream.py [--events 100000] [--source movielens|sim] [--repeat 2]

Starts the embedded broker, preloads one topic, then runs real `advrec worker` processes over it
(each with its own app id, so each reads the whole topic), alternating detection off and on, and
prints the rates, the per-event wall and CPU cost of each and the cost added by the detector
(target ≤ 30 %). CPU time of the worker process is the steadier figure on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import load_events, worker_run  # noqa: E402

from streams.kafka.producer import send_raw  # noqa: E402
from streams.kafka.topics import ensure_topics  # noqa: E402
from streams.local.broker import EmbeddedBroker  # noqa: E402
from streams.local.processes import metric_total  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--source", choices=["sim", "movielens", "taobao"], default="movielens")
    parser.add_argument("--repeat", type=int, default=2, help="off/on pairs, alternating")
    parser.add_argument("--env", action="append", default=[], help="extra ADVREC_X=Y for both workers")
    args = parser.parse_args()

    events = load_events(args.source, args.events)
    records = [(e["user_id"].encode(), json.dumps(e).encode()) for e in events]
    extra = dict(kv.split("=", 1) for kv in args.env)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    cpus: dict[str, list[float]] = {"off": [], "on": []}
    info = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        topic = "bench-events"
        ensure_topics(broker.bootstrap, [topic, "events.deadletter"], 4)
        send_raw(broker.bootstrap, topic, records)
        for k in range(args.repeat):
            for mode in ("off", "on"):
                workdir = Path(tmp) / f"{mode}-{k}"
                env = {
                    **extra,
                    "ADVREC_FRAUD_ENABLED": "true" if mode == "on" else "false",
                    "ADVREC_APP_ID": f"bench-{mode}-{k}-{int(time.time())}",
                }
                run = worker_run(broker.bootstrap, topic, len(records), workdir, env)
                rate, cpu, samples = run.rate, run.cpu, run.samples
                rates[mode].append(rate)
                cpus[mode].append(cpu)
                print(f"run {k} fraud {mode:3}: {rate:8.0f} events/s wall, {cpu:6.1f} us/event CPU", flush=True)
                if mode == "on":
                    info = {
                        "verdicts": metric_total(samples, "advrec_fraud_score_count"),
                        "flags": metric_total(samples, "advrec_fraud_flags_total"),
                        "flagged": metric_total(samples, "advrec_fraud_flagged_users"),
                    }

    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    users = len({e["user_id"] for e in events})
    print(f"source={args.source} events={len(records)} users={users} repeat={args.repeat}")
    c_off, c_on = statistics.median(cpus["off"]), statistics.median(cpus["on"])
    print(
        f"worker, fraud detection off: {off:8.0f} events/s  ({1e6 / off:6.1f} us/event wall, {c_off:6.1f} us/event CPU)"
    )
    print(f"worker, fraud detection on:  {on:8.0f} events/s  ({1e6 / on:6.1f} us/event wall, {c_on:6.1f} us/event CPU)")
    print(
        f"per-event cost added by the detector (medians; target <= +30 %): wall {100 * (off / on - 1):+.1f} %, "
        f"CPU {100 * (c_on / c_off - 1):+.1f} % ({c_on - c_off:+.1f} us/event)"
    )
    print(
        f"last 'on' run: {info['verdicts']:.0f} verdicts written to the suspicion table, "
        f"{info['flags']:.0f} flags, {info['flagged']:.0f} users flagged at the end"
    )


if __name__ == "__main__":
    main()
