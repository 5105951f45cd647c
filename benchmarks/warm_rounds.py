"""The stream trainer's rounds after a rejected challenger: fitted fresh, next to warm-started again.

    .venv/bin/python benchmarks/warm_rounds.py [--seeds 8] [--ml-seeds 2] [--jobs 2]

A stream as the demo runs it, offline: 33,000 events in time order, windows of 1,500, a round once
6,000 rows are pending (`--round-rows`; the demo's `--min-batch-rows 6000`), 20 epochs from
scratch and 4 warm, APR, the trust gate on, with the trust the detector would grant emulated (an
account is trusted once it has 20 events in the stream so far, the default
`TrustPolicy.min_events`), the real `Trainer` and the real gate (`registry.promotion.decide`,
default bounds). Early in a stream few accounts are trusted, so
the first round trains on a thousand rows or so.

Two rules for the round after the gate rejected a challenger, on the same stream and seed:
`fresh` (the trainer's: the next challenger is fitted fresh on the new rows and the whole replay
buffer) and `warm` (the rule before, the baseline: warm-started from the champion again).
Streams: the simulator (`streams.sources.simulator`, seeds 1..`--seeds`), and MovieLens-100K in
time order, three stretches of 33,000 ratings (the rules were chosen on the simulator; ML-100K is
the check on data we did not generate). Printed per stream: each round's decision (P promote,
R reject, H hold), the last round's HR@10 beside popularity's on its split, and the CPU seconds
of all rounds; then the totals: later rounds (2..) promoted, and the CPU ratio fresh / warm.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from registry.promotion import GateConfig, decide  # noqa: E402
from streams.contract.windows import WINDOW_SCHEMA  # noqa: E402
from streams.sources.datasets import read_ratings  # noqa: E402
from streams.sources.simulator import simulated_events  # noqa: E402
from training.stream.quarantine import Quarantine  # noqa: E402
from training.stream.state import StateStore  # noqa: E402
from training.stream.trainer import Batch, Trainer, TrainerConfig, Verdict  # noqa: E402
from training.testing import window_batch  # noqa: E402

ML100K = ROOT.parent / "shared" / "data" / "movielens-100k" / "u.data"
EVENTS, WINDOW, ROUND_ROWS, TRUSTED_AT = 33_000, 1_500, 6_000, 20


def stream_events(source: str, seed: int) -> pd.DataFrame:
    """The stream's events in time order: `sim` (simulator, seeded) or `ml:<offset>` (ML-100K ratings)."""
    if source == "sim":
        events = pd.DataFrame(list(simulated_events(n_events=EVENTS, seed=seed)))
        return events.sort_values("ts", kind="stable").reset_index(drop=True)
    offset = int(source.split(":")[1])
    ratings = read_ratings(ML100K).sort_values("timestamp", kind="stable").reset_index(drop=True)
    r = ratings.iloc[offset : offset + EVENTS]
    return pd.DataFrame(
        {
            "event_id": [f"e{offset + k}" for k in range(len(r))],
            "user_id": r["user"].astype(str).to_numpy(),
            "item_id": r["item"].astype(str).to_numpy(),
            "type": "rating",
            "ts": r["timestamp"].astype(float).to_numpy(),
            "value": r["rating"].astype(float).to_numpy(),
        }
    )


def windows(events: pd.DataFrame) -> tuple[list[Batch], dict[str, pd.DataFrame]]:
    """The events as window files (one partition) and their announcements."""
    batches, files = [], {}
    for k, lo in enumerate(range(0, len(events), WINDOW)):
        e = events.iloc[lo : lo + WINDOW]
        rows = pd.DataFrame(
            {
                "event_id": e["event_id"].astype(str).to_numpy(),
                "user_id": e["user_id"].astype(str).to_numpy(),
                "item_id": e["item_id"].astype(str).to_numpy(),
                "type": e["type"].to_numpy(),
                "ts": e["ts"].astype(float).to_numpy(),
                "value": e["value"].to_numpy() if "value" in e else None,
                "session_id": None,
                "partition": 0,
                "offset": np.arange(lo, lo + len(e)),
                "kafka_ts": e["ts"].astype(float).to_numpy(),
                "suspect": False,
            },
            columns=WINDOW_SCHEMA.names,
        ).assign(topic="events")
        uri = f"mem://w{k}"
        files[uri] = rows
        batches.append(window_batch(uri, rows, k))
    return batches, files


def one_stream(source: str, seed: int, fresh: bool, round_rows: int = ROUND_ROWS) -> dict:
    """Every round of one stream under one rule: decisions, the last round's HR@10 and popularity's, CPU s."""
    torch.set_num_threads(1)
    batches, files = windows(stream_events(source, seed))
    gate, champion, rounds = GateConfig(), [None], []

    def on_round(model, report: dict, lineage: dict) -> Verdict:
        decision = decide(
            {**report, "eval_users": report["test_users"]},
            report.get("champion"),
            gate,
            champion_exists=champion[0] is not None,
        )
        if decision.promoted:
            champion[0] = report["round"]
        rounds.append((decision.action, report["hr@10"], report["popularity"]["hr@10"]))
        return Verdict(decision.action, report["round"], decision.reasons)

    config = TrainerConfig(
        model="apr",
        epochs=4,
        first_epochs=20,
        min_batch_rows=round_rows,
        trust_gate=True,
        seed=seed,
        fresh_after_reject=fresh,
    )
    started = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, StateStore(Path(tmp)), read_batch=files.__getitem__, on_round=on_round)
        quarantine, seen = Quarantine(), collections.Counter()
        for batch in batches:
            seen.update(files[batch.announcement["uri"]]["user_id"])
            trainer.offer(batch)
            if trainer.ready():
                quarantine.trusted = {user for user, n in seen.items() if n >= TRUSTED_AT}
                trainer.run_round(quarantine)
    return {"rounds": rounds, "cpu_s": time.process_time() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="simulator streams (seeds 1..N)")
    parser.add_argument("--ml-seeds", type=int, default=2, help="trainer seeds per ML-100K stretch")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--round-rows", type=int, default=ROUND_ROWS, help="rows pending before a round")
    args = parser.parse_args()
    streams = [("sim", s) for s in range(1, args.seeds + 1)]
    streams += [(f"ml:{offset}", s) for offset in (0, 33_000, 66_000) for s in range(args.ml_seeds)]
    runs = [(source, seed, fresh, args.round_rows) for source, seed in streams for fresh in (True, False)]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = {run[:3]: result for run, result in zip(runs, pool.map(one_stream, *zip(*runs)))}
    letter = {"promote": "P", "reject": "R", "hold": "H"}
    print(f"{'stream':>12} {'seed':>4} | {'fresh: decisions, last HR@10 / pop, CPU s':>44} | {'warm (baseline)':>36}")
    totals = {True: collections.Counter(), False: collections.Counter()}
    for source, seed in streams:
        cells = []
        for fresh in (True, False):
            r = results[(source, seed, fresh)]
            decisions = "".join(letter[a] for a, _, _ in r["rounds"])
            _, hr, pop = r["rounds"][-1]
            cells.append(f"{decisions:>8} {hr:6.3f} / {pop:5.3f} {r['cpu_s']:7.1f}")
            kind = source.split(":")[0]
            later = [a for a, _, _ in r["rounds"][1:]]
            totals[fresh][f"{kind} later"] += len(later)
            totals[fresh][f"{kind} promoted"] += later.count("promote")
            totals[fresh][f"{kind} cpu"] += r["cpu_s"]
        print(f"{source:>12} {seed:>4} | {cells[0]:>44} | {cells[1]:>36}")
    for kind, name in (("sim", "simulator"), ("ml", "ML-100K")):
        f, w = totals[True], totals[False]
        if not f[kind + " later"]:
            continue
        print(
            f"{name}: later rounds promoted, fresh {f[kind + ' promoted']} of {f[kind + ' later']}, "
            f"warm (baseline) {w[kind + ' promoted']} of {w[kind + ' later']}; "
            f"CPU fresh / warm {f[kind + ' cpu'] / w[kind + ' cpu']:.2f}"
        )
    for kind, name in (("sim", "simulator"), ("ml", "ML-100K")):
        lasts = {
            fresh: [results[(s, n, fresh)]["rounds"][-1][1] for s, n in streams if s.split(":")[0] == kind]
            for fresh in (True, False)
        }
        if lasts[True]:
            print(
                f"{name}: last round's HR@10, median fresh {statistics.median(lasts[True]):.3f}, "
                f"warm (baseline) {statistics.median(lasts[False]):.3f}"
            )


if __name__ == "__main__":
    main()
