"""The pure fraud detector's CPU per event as the user count grows, with the rotation's cap and without.

    .venv/bin/python benchmarks/detector_scale.py [--events 200000] [--users 5000,20000,50000] [--flush-every 1000]

Folds simulated events (2,000 items) into a `FraudDetector`, flushing every `--flush-every` events
as the detector agent does per take, and prints per user count the CPU µs per event of `update`
and of `flush`, and how many quiet users the rotation rescored per event. The baseline, in the
same run on the same events: the detector without the cap (`refresh_max_per_event` = inf, the rule
before it), whose rotation rescores 1 % of all users per 500 events however many there are.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.fraud import FraudDetector  # noqa: E402
from streams.fraud.config import DetectorConfig  # noqa: E402
from streams.sources.simulator import simulated_events  # noqa: E402


def measure(events: list[dict], config: DetectorConfig, flush_every: int) -> tuple[float, float, float]:
    """(update µs/event, flush µs/event, rotation positions per event)."""
    det = FraudDetector(config)
    update_s = flush_s = 0.0
    rotated = 0
    for start in range(0, len(events), flush_every):
        t0 = time.process_time()
        for e in events[start : start + flush_every]:
            det.update(e["user_id"], e["item_id"], e["type"], e["ts"], e.get("value"))
        t1 = time.process_time()
        before = det.rotation
        det.flush()
        flush_s += time.process_time() - t1
        update_s += t1 - t0
        rotated += (det.rotation - before) % max(len(det.uids), 1)
    n = len(events)
    return 1e6 * update_s / n, 1e6 * flush_s / n, rotated / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", default="5000,20000,50000")
    parser.add_argument("--flush-every", type=int, default=1_000)
    args = parser.parse_args()
    capped = DetectorConfig()
    uncapped = DetectorConfig(refresh_max_per_event=math.inf)
    print(f"{args.events} simulated events, 2,000 items, a flush every {args.flush_every}; CPU µs/event")
    print(f"{'users':>7} | {'capped: update, flush, rotated/event':>38} | {'uncapped (baseline)':>30} | flush ratio")
    for n_users in (int(u) for u in args.users.split(",")):
        events = list(simulated_events(n_events=args.events, n_users=n_users, n_items=2_000, seed=1))
        cu, cf, cr = measure(events, capped, args.flush_every)
        bu, bf, br = measure(events, uncapped, args.flush_every)
        capped_line = f"{cu:>10.2f} {cf:>10.2f} {cr:>14.3f}"
        print(f"{n_users:>7} | {capped_line}  | {bu:>8.2f} {bf:>8.2f} {br:>10.3f}  | {cf / bf:>6.2f}")


if __name__ == "__main__":
    main()
