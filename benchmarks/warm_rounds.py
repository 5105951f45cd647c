"""The stream trainer's rounds and the gate, offline: the defaults next to a baseline rule, same streams.

    .venv/bin/python benchmarks/warm_rounds.py [--seeds 8] [--ml-seeds 2] [--jobs 2] [--round-rows 6000]
        [--baseline warm|no-popularity-floor]

A stream as the demo runs it, offline: 33,000 events in time order, windows of 1,500, a round once
6,000 rows are pending (`--round-rows`; the demo's `--min-batch-rows 6000`), 20 epochs from
scratch and 4 warm, APR, the trust gate on, with the trust the detector would grant emulated (an
account is trusted once it has 20 events in the stream so far, the default
`TrustPolicy.min_events`), the real `Trainer` and the real gate (`registry.promotion.decide`,
default bounds). Early in a stream few accounts are trusted, so
the first round trains on a thousand rows or so.

The defaults are run beside one baseline (`--baseline`), on the same stream and seed:
- `warm`: the round after the gate rejected a challenger's recipe is warm-started from the
  champion again (the trainer's rule before; its rule now fits that challenger fresh on the new
  rows and the whole replay buffer);
- `no-popularity-floor`: the gate promotes a version that ranks its users worse than the
  popularity list (`ADVREC_GATE_POPULARITY_FLOOR=false`, the gate before).
Streams: the simulator (`streams.sources.simulator`, seeds 1..`--seeds`), and MovieLens-100K in
time order, three stretches of 33,000 ratings (the rules were chosen on the simulator; ML-100K is
the check on data we did not generate). Printed per stream: each round's decision (P promote,
R reject, H hold), the last round's HR@10 beside popularity's on its split, and the CPU seconds
of all rounds; then the totals: later rounds (2..) promoted, the CPU ratio, and the served HR@10:
at each round from the second, what users were being served (the champion, or the popularity list
while there is none) measured on that round's held-out pairs, which it had never trained on, with
popularity's own HR@10 on the same pairs beside it.
"""

from __future__ import annotations

import argparse
import collections
import copy
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from registry.promotion import GateConfig, decide  # noqa: E402
from streams.contract.windows import WINDOW_SCHEMA  # noqa: E402
from streams.sources.datasets import read_ratings  # noqa: E402
from streams.sources.simulator import simulated_events  # noqa: E402
from training.evaluation import popularity_ranks, rank_metrics, sampled_ranks  # noqa: E402
from training.models.served import AsServed  # noqa: E402
from training.stream import trainer as trainer_module  # noqa: E402
from training.stream.holdout import round_report as report_of_round  # noqa: E402
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


class Round(NamedTuple):
    """One round: the gate's action, HR@10 of the challenger and of popularity on the round's
    pairs, and of what was served on them: the champion's numbers in the round's report (every
    test user ranked by the champion, as served), as the scorer serves now (users ranked by their
    profile, `training.models.served`; popularity for those with nothing the champion can rank),
    as it served before (the trained row, popularity for users the champion does not know), with
    the share of such users."""

    action: str
    hr: float
    popularity: float
    served: float
    served_as_scorer: float
    served_by_rows: float  # the scorer's rule before: trained rows, popularity for unknown users
    unknown_users: float
    known_champion: float  # HR@10 on the test users the champion knows: the champion's ...
    known_popularity: float  # ... and popularity's on the same users (nan: none known)


def served_as_scorer(champion, split) -> tuple[float, float, float, float, float]:
    """HR@10 on the split's pairs of what the scorer serves (each user ranked by the champion over
    its profile, the split's training rows, or by its trained row; the popularity list, fitted on
    the split's training rows as the gate's baseline, for users it can rank neither way and for
    everyone without a champion) and of what it served before (trained rows, popularity for users
    the champion does not know); the share of test users the champion does not know, and on the
    users it knows: its HR@10 and popularity's."""
    popular = popularity_ranks(split)
    if champion is None:
        hr = rank_metrics(popular, 10)[0]
        return hr, hr, 1.0, float("nan"), float("nan")
    users = split.test["user"].astype(str).to_numpy()
    known = champion.users.lookup(users) >= 0
    served = AsServed(champion, split.train)
    profile = served.users.lookup(users)
    rankable = known | ((profile >= 0) & (served.counts[np.maximum(profile, 0)] > 0))
    ranks = sampled_ranks(champion, split)
    now = rank_metrics(np.where(rankable, sampled_ranks(served, split), popular), 10)[0]
    before = rank_metrics(np.where(known, ranks, popular), 10)[0]
    return (
        now,
        before,
        float(1.0 - known.mean()),
        rank_metrics(ranks[known], 10)[0],
        rank_metrics(popular[known], 10)[0],
    )


def one_stream(source: str, seed: int, rule: str, round_rows: int = ROUND_ROWS) -> dict:
    """Every round of one stream under one rule ("default" or a baseline): decisions, HR@10 of the
    challenger, of popularity and of what was served, on each round's split; CPU s."""
    torch.set_num_threads(1)
    batches, files = windows(stream_events(source, seed))
    gate, champion, rounds = GateConfig(popularity_floor=rule != "no-popularity-floor"), [None], []
    served_model, splits = [None], []  # the champion as served; each round's split, as the trainer made it

    def on_round(model, report: dict, lineage: dict) -> Verdict:
        decision = decide(
            {**report, "eval_users": report["test_users"]},
            report.get("champion"),
            gate,
            champion_exists=champion[0] is not None,
        )
        popularity = report["popularity"]["hr@10"]
        served = popularity if champion[0] is None else report["champion"]["hr@10"]
        as_scorer = served_as_scorer(served_model[0], splits[-1])
        if decision.promoted:
            champion[0] = report["round"]
            served_model[0] = copy.deepcopy(model)
        rounds.append(Round(decision.action, report["hr@10"], popularity, served, *as_scorer))
        return Verdict(decision.action, report["round"], decision.reasons)

    def keeping_the_split(model, split, *args, **kwargs):
        splits.append(split)
        return report_of_round(model, split, *args, **kwargs)

    # The round's split is the trainer's own (its holdout of the trusted rows); seen here, and only
    # here, so that what was served is measured on the pairs the gate judged
    trainer_module.round_report = keeping_the_split

    config = TrainerConfig(
        model="apr",
        epochs=4,
        first_epochs=20,
        min_batch_rows=round_rows,
        trust_gate=True,
        seed=seed,
        fresh_after_reject=rule != "warm",
    )
    started = time.process_time()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(config, StateStore(Path(tmp)), read_batch=files.__getitem__, on_round=on_round)
            quarantine, seen = Quarantine(), collections.Counter()
            for batch in batches:
                seen.update(files[batch.announcement["uri"]]["user_id"])
                trainer.offer(batch)
                if trainer.ready():
                    quarantine.trusted = {user for user, n in seen.items() if n >= TRUSTED_AT}
                    trainer.run_round(quarantine)
    finally:
        trainer_module.round_report = report_of_round
    return {"rounds": rounds, "cpu_s": time.process_time() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="simulator streams (seeds 1..N)")
    parser.add_argument("--ml-seeds", type=int, default=2, help="trainer seeds per ML-100K stretch")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--round-rows", type=int, default=ROUND_ROWS, help="rows pending before a round")
    parser.add_argument("--baseline", choices=["warm", "no-popularity-floor"], default="warm")
    args = parser.parse_args()
    rules = ("default", args.baseline)
    streams = [("sim", s) for s in range(1, args.seeds + 1)]
    streams += [(f"ml:{offset}", s) for offset in (0, 33_000, 66_000) for s in range(args.ml_seeds)]
    runs = [(source, seed, rule, args.round_rows) for source, seed in streams for rule in rules]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = {run[:3]: result for run, result in zip(runs, pool.map(one_stream, *zip(*runs)))}
    letter = {"promote": "P", "reject": "R", "hold": "H"}
    head = "decisions, last HR@10 / pop, CPU s"
    print(f"{'stream':>12} {'seed':>4} | {'defaults: ' + head:>44} | {args.baseline + ' (baseline)':>36}")
    totals = {rule: collections.Counter() for rule in rules}
    served = {rule: collections.defaultdict(list) for rule in rules}
    for source, seed in streams:
        cells, kind = [], source.split(":")[0]
        for rule in rules:
            r = results[(source, seed, rule)]
            decisions = "".join(letter[x.action] for x in r["rounds"])
            last = r["rounds"][-1]
            cells.append(f"{decisions:>8} {last.hr:6.3f} / {last.popularity:5.3f} {r['cpu_s']:7.1f}")
            later = r["rounds"][1:]
            totals[rule][f"{kind} later"] += len(later)
            totals[rule][f"{kind} promoted"] += sum(x.action == "promote" for x in later)
            totals[rule][f"{kind} cpu"] += r["cpu_s"]
            served[rule][kind] += later
        print(f"{source:>12} {seed:>4} | {cells[0]:>44} | {cells[1]:>36}")
    new, old = rules
    for kind, name in (("sim", "simulator"), ("ml", "ML-100K")):
        f, w = totals[new], totals[old]
        if not f[kind + " later"]:
            continue
        print(
            f"{name}: later rounds promoted, defaults {f[kind + ' promoted']} of {f[kind + ' later']}, "
            f"{old} (baseline) {w[kind + ' promoted']} of {w[kind + ' later']}; "
            f"CPU defaults / {old} {f[kind + ' cpu'] / w[kind + ' cpu']:.2f}"
        )
        ours = [(s, n) for s, n in streams if s.startswith(kind)]
        lasts = {rule: [results[(s, n, rule)]["rounds"][-1].hr for s, n in ours] for rule in rules}
        print(
            f"{name}: last round's HR@10, median defaults {statistics.median(lasts[new]):.3f}, "
            f"{old} (baseline) {statistics.median(lasts[old]):.3f}"
        )
        later = {rule: served[rule][kind] for rule in rules}
        below = {rule: sum(x.served < x.popularity for x in later[rule]) for rule in rules}
        print(
            f"{name}: served HR@10 over later rounds, mean defaults "
            f"{statistics.mean(x.served for x in later[new]):.3f}, {old} (baseline) "
            f"{statistics.mean(x.served for x in later[old]):.3f}; rounds serving worse than popularity on the "
            f"same pairs: {below[new]} of {len(later[new])}, {old} {below[old]} of {len(later[old])}; "
            f"popularity's own HR@10 on them, mean {statistics.mean(x.popularity for x in later[new]):.3f}"
        )
        below = {rule: sum(x.served_as_scorer < x.popularity for x in later[rule]) for rule in rules}
        print(
            f"{name}: served as the scorer serves (users ranked by their profile), mean defaults "
            f"{statistics.mean(x.served_as_scorer for x in later[new]):.3f}, {old} (baseline) "
            f"{statistics.mean(x.served_as_scorer for x in later[old]):.3f}; rounds below popularity: "
            f"{below[new]} of {len(later[new])}, {old} {below[old]}"
        )
        print(
            f"{name}: served by trained rows, popularity for users the champion does not know (the scorer "
            f"before), mean defaults {statistics.mean(x.served_by_rows for x in later[new]):.3f}; test users "
            f"the champion did not know, mean share {statistics.mean(x.unknown_users for x in later[new]):.2f}"
        )
        known = [x for x in later[new] if x.known_champion == x.known_champion]  # rounds with a known user
        if known:
            print(
                f"{name}: on the test users the champion knows (defaults, {len(known)} rounds): its HR@10 "
                f"{statistics.mean(x.known_champion for x in known):.3f}, popularity's "
                f"{statistics.mean(x.known_popularity for x in known):.3f}"
            )


if __name__ == "__main__":
    main()
