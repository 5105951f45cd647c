"""Freshness on embedded defaults: event arrival in Kafka → first recommendation by a model trained on it.

    .venv/bin/python benchmarks/freshness.py [--events 20000] [--rate 700]

Runs `advrec demo` (broker, worker, trainer with registry, scorer, request traffic) without an
attack and prints the freshness percentiles it measured per event, next to the loop's own
pacing as a baseline: the window length plus one training round is the least any event can
wait, so the ratio says how much the registry, the gate and the scorer's pick-up add.
Target: p95 ≤ 60 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=700.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "streams.cli",
                "demo",
                "--events",
                str(args.events),
                "--rate",
                str(args.rate),
                "--attack",
                "none",
                "--out",
                out,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        report = json.loads((Path(out) / "report.json").read_text())
        rounds = sorted(Path(out, "state", "models").glob("round-*.json"))
        round_seconds = [json.loads(p.read_text())["report"].get("seconds") for p in rounds]
    fresh = report["freshness_seconds"]
    from streams.local.cluster import ClusterConfig

    window_s = ClusterConfig(state_dir=Path(".")).window_max_seconds
    print(f"events measured:        {fresh['events_measured']}")
    print(f"freshness p50 / p95:    {fresh['p50']:.1f} s / {fresh['p95']:.1f} s   (target p95 <= 60 s)")
    print(
        f"window length (floor):  {window_s:.1f} s; rounds trained: {len(rounds)}; "
        f"models promoted: {report['models']['promoted']} of {report['models']['trained']}"
    )
    print(f"p50 / window length:    {fresh['p50'] / window_s:.2f}")
    print(f"round seconds:          {[s for s in round_seconds if s is not None]}")


if __name__ == "__main__":
    main()
