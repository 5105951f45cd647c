"""The promotion gate on the stream trainer's own rounds over MovieLens-100K, next to the old gate.

    .venv/bin/python benchmarks/gate.py [--seeds 3] [--first-epochs 20] [--attack bandwagon:0.05:0.005]

ML-100K in time order: the first 60% is round 1 (the first champion), then windows of 5%: rounds
2-4 clean, round 5 twice from the same saved state: clean, and with a seeded attack from
`streams.sources.attacks` spread over the window (fresh accounts, not flagged: the trainer
knows nothing of them). The trainer runs the real round (trusted evaluation set, champion measured
beside the challenger, exposure audit, red-team probe every `--probe-every` rounds) and follows the
new gate's verdicts. Printed, per seed and in all:

* the exposure audit of round 5, poisoned vs clean: the target's share of audited top-10 lists
  (challenger vs champion), the share of its new rows from untrusted accounts, and the decision;
* false rejects: clean rounds the new gate rejects (and holds), next to the old gate's decisions
  on the very same challengers (the old rule is read from git: `OLD_GATE` below; it compared
  with the champion's tags from its own round and passed a missing poisoning figure);
* the red-team probe's cost: its seconds on a warm round over the round's own seconds, and that
  cost amortised over `--probe-every` rounds (the trainer's default: 5).

Bounds were set a priori (docs/operations.md), not tuned on this run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
import types
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from registry.promotion import GateConfig, decide, exposure_alarms  # noqa: E402
from streams.contract.windows import WINDOW_SCHEMA  # noqa: E402
from streams.sources.attacks import parse_inject, plan_attack, summarize  # noqa: E402
from streams.sources.datasets import read_ratings  # noqa: E402
from training.stream.loop import run  # noqa: E402
from training.stream.quarantine import Quarantine  # noqa: E402
from training.stream.state import StateStore  # noqa: E402
from training.stream.trainer import Batch, Trainer, TrainerConfig, Verdict  # noqa: E402
from training.testing import MemorySource  # noqa: E402

ML100K = ROOT.parent / "shared" / "data" / "movielens-100k" / "u.data"
OLD_GATE = "b63b012:registry/promotion.py"  # the gate before issue 14


def old_gate() -> types.ModuleType:
    """The promotion rule as it was (from git), to decide on the same reports."""
    source = subprocess.run(["git", "show", OLD_GATE], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("old_promotion")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, OLD_GATE, "exec"), module.__dict__)  # noqa: S102 - our own code, from our own history
    return module


def as_window(frame: pd.DataFrame, first_offset: int) -> pd.DataFrame:
    """Ratings as the rows of a window file (one partition, offsets from first_offset)."""
    n = len(frame)
    return pd.DataFrame(
        {
            "event_id": [f"e{first_offset + i}" for i in range(n)],
            "user_id": frame["user"].astype(str).to_numpy(),
            "item_id": frame["item"].astype(str).to_numpy(),
            "type": "rating",
            "ts": frame["timestamp"].astype(float).to_numpy(),
            "value": frame["rating"].astype(float).to_numpy(),
            "session_id": None,
            "partition": 0,
            "offset": np.arange(first_offset, first_offset + n),
            "kafka_ts": frame["timestamp"].astype(float).to_numpy(),
            "suspect": False,
        },
        columns=WINDOW_SCHEMA.names,
    ).assign(topic="events")


def batch_of(uri: str, rows: pd.DataFrame, n: int) -> Batch:
    """The announcement of a window file."""
    first, last = int(rows["offset"].iloc[0]), int(rows["offset"].iloc[-1])
    return Batch(
        {
            "uri": uri,
            "path": uri,
            "rows": len(rows),
            "topic": "events",
            "partition": 0,
            "first_offset": first,
            "last_offset": last,
            "min_kafka_ts": float(rows["kafka_ts"].min()),
            "max_kafka_ts": float(rows["kafka_ts"].max()),
        },
        "batches",
        0,
        n,
    )


def plain(decision) -> types.SimpleNamespace:
    """A decision as plain values (the old gate's class lives in a module no other process has)."""
    return types.SimpleNamespace(action=decision.action, reasons=tuple(decision.reasons), promoted=decision.promoted)


class Rounds:
    """on_round: the new gate decides (and drives the trainer); the old gate decides on the same report."""

    def __init__(self, gate: GateConfig, old: types.ModuleType) -> None:
        self.gate, self.old = gate, old
        self.champion: int | None = None
        self.old_champion: dict | None = None  # the old gate's champion tags: its own round's numbers
        self.rows: list[dict] = []

    def __call__(self, model, report: dict, lineage: dict) -> Verdict:
        judged = {**report, "eval_users": report["test_users"]}  # `report` itself gets its seconds later
        new = decide(judged, report.get("champion"), self.gate, champion_exists=self.champion is not None)
        old = self.old.decide(judged, self.old_champion, self.old.GateConfig())
        if old.promoted:
            self.old_champion = {"hr@10": report["hr@10"], "ndcg@10": report["ndcg@10"]}
        version = report["round"]
        if new.promoted:
            self.champion = version
        self.rows.append({"round": version, "new": plain(new), "old": plain(old), "report": report})
        return Verdict(new.action, version)


def trainer(directory: Path, files: dict, rounds: Rounds, config: TrainerConfig) -> Trainer:
    return Trainer(config, StateStore(directory), read_batch=files.__getitem__, on_round=rounds)


def target_row(report: dict, target: str) -> dict:
    """The audit's entry of the target (zeros if its exposure did not rise)."""
    for item in report.get("exposure", {}).get("items", []):
        if item["item"] == target:
            return item
    return {"item": target, "challenger": float("nan"), "champion": float("nan"), "carried": float("nan")}


def one_seed(seed: int, args, scratch: Path) -> dict:
    """Every round of one seed, in its own process (seeds run side by side)."""
    torch.set_num_threads(args.threads)
    ratings = read_ratings(ML100K).sort_values("timestamp", kind="stable").reset_index(drop=True)
    old = old_gate()
    n = len(ratings)
    cuts = [0, int(0.60 * n)] + [int((0.60 + 0.05 * k) * n) for k in range(1, 5)]
    frames, batches, files = [], [], {}
    for k, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:])):
        rows = as_window(ratings.iloc[lo:hi], lo)
        uri = f"mem://w{k}"
        files[uri], frames = rows, frames + [rows]
        batches.append(batch_of(uri, rows, k))
    config = TrainerConfig(
        model="apr", epochs=args.epochs, first_epochs=args.first_epochs, seed=seed, probe_every=args.probe_every
    )
    gate = GateConfig()
    rounds = Rounds(gate, old)
    state = scratch / f"seed{seed}"
    clean_trainer = trainer(state, files, rounds, config)
    run(clean_trainer, MemorySource(batches[:-1], per_poll=1), Quarantine(), idle_timeout=0)

    # Round 5 twice from the same saved state: clean, then with the attack in its window.
    poisoned_state = scratch / f"seed{seed}-poisoned"
    shutil.copytree(state, poisoned_state)
    before = (rounds.champion, rounds.old_champion)
    run(trainer(state, files, rounds, config), MemorySource(batches[-1:]), Quarantine(), idle_timeout=0)
    clean_final = rounds.rows[-1]

    last = files["mem://w4"]
    genuine = ratings.iloc[: cuts[-2]]
    spec = parse_inject(
        args.attack, start_ts=float(last["ts"].min()), span_s=float(last["ts"].max() - last["ts"].min())
    )
    plan = plan_attack(spec, summarize(genuine), seed=seed)
    attack = pd.DataFrame(list(plan.events()))
    attack = attack.assign(
        user=attack["user_id"], item=attack["item_id"], rating=attack["value"], timestamp=attack["ts"]
    )
    poisoned = pd.concat([last, as_window(attack, int(last["offset"].iloc[-1]) + 1)], ignore_index=True)
    poisoned = poisoned.sort_values("ts", kind="stable").reset_index(drop=True)
    files["mem://w4p"] = poisoned
    p_batch = batch_of("mem://w4p", poisoned.sort_values("offset"), 9)
    rounds.champion, rounds.old_champion = before
    run(trainer(poisoned_state, files, rounds, config), MemorySource([p_batch]), Quarantine(), idle_timeout=0)
    poisoned_final = rounds.rows[-1]
    (target,) = plan.targets[:1]
    return {
        "seed": seed,
        "rows": rounds.rows[:-2] + [clean_final],
        "clean_final": clean_final,
        "poisoned_final": poisoned_final,
        "target": target,
        "accounts": len(plan.users),
        "events_per_account": len(attack) / max(len(plan.users), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-epochs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--probe-every", type=int, default=2, help="so that warm rounds run the probe too")
    parser.add_argument("--attack", default="bandwagon:0.05:0.005", help="TYPE:ATTACK_SIZE:FILLER_SIZE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per seed (seeds run in parallel)")
    args = parser.parse_args()
    started = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="advrec-gate-bench-") as scratch,
        ProcessPoolExecutor(args.seeds, mp_context=spawn) as pool,
    ):
        results = list(pool.map(one_seed, range(args.seeds), [args] * args.seeds, [Path(scratch)] * args.seeds))

    print(f"\nML-100K, APR, {args.first_epochs} first epochs then {args.epochs} per round, {args.seeds} seeds")
    print(f"attack in round 5: {args.attack} (generator's own target choice), fresh accounts not flagged\n")
    print("exposure audit of round 5 (target's share of audited trusted users' top-10; carried = untrusted rows):")
    print(
        "seed  target  accounts  ev/acct  |  clean: chal / champ   |  poisoned: chal / champ  carried  max jump"
        "  |  new gate (poisoned, clean)  |  old gate (poisoned, clean)"
    )
    for r in results:
        c, p = r["clean_final"], r["poisoned_final"]
        tc, tp = target_row(c["report"], r["target"]), target_row(p["report"], r["target"])
        jump = max((i["challenger"] - i["champion"] for i in p["report"]["exposure"]["items"]), default=0.0)
        print(
            f"{r['seed']:>4}  {r['target']:>6}  {r['accounts']:>8}  {r['events_per_account']:>7.1f}  |"
            f"  {tc['challenger']:.3f} / {tc['champion']:.3f}         |  {tp['challenger']:.3f} / {tp['champion']:.3f}"
            f"     {tp['carried']:.2f}     {jump:.3f}   |  {p['new'].action:>7}, {c['new'].action:<7}"
            f"             |  {p['old'].action:>7}, {c['old'].action}"
        )
        alarms = exposure_alarms(p["report"].get("exposure"), GateConfig())
        print(f"      exposure alarms: {', '.join(a['item'] for a in alarms) or 'none'}")
        print(f"      new gate, poisoned: {' | '.join(p['new'].reasons)[:400]}")
        print(f"      new gate, clean:    {' | '.join(c['new'].reasons)[:400]}")
    clean = [row for r in results for row in r["rows"] if row["round"] > 1]
    count = {
        g: {a: sum(row[g].action == a for row in clean) for a in ("promote", "hold", "reject")} for g in ("new", "old")
    }
    poisoned_passed = {g: sum(r["poisoned_final"][g].promoted for r in results) for g in ("new", "old")}
    print(f"\nclean rounds 2-5 over {args.seeds} seeds: {len(clean)}")
    for g in ("new", "old"):
        print(
            f"  {g} gate: promote {count[g]['promote']}, hold {count[g]['hold']}, reject {count[g]['reject']}"
            f"  (false rejects {count[g]['reject'] / max(len(clean), 1):.0%});"
            f" poisoned round 5 promoted {poisoned_passed[g]} of {len(results)}"
        )
    reasons = [reason.split(":")[0] for row in clean if not row["new"].promoted for reason in row["new"].reasons]
    print("  new gate's reasons on clean rounds:", dict(pd.Series(reasons, dtype=str).value_counts()))

    warm = [row["report"] for r in results for row in r["rows"] if row["round"] > 1]
    probed = [rep for rep in warm if rep["probe_seconds"] > 0]
    plain = [rep["seconds"] - rep["probe_seconds"] for rep in warm]
    if probed:
        probe_s = float(np.mean([rep["probe_seconds"] for rep in probed]))
        round_s = float(np.mean(plain))
        print(
            f"\nred-team probe on a warm round: {probe_s:.1f} s, a round without it {round_s:.1f} s"
            f" (x{(round_s + probe_s) / round_s:.2f} when it runs)"
        )
        for every in (args.probe_every, 5):
            print(f"  amortised every {every} rounds: +{probe_s / every / round_s:.0%} round time")
    first = [row["report"] for r in results for row in r["rows"] if row["round"] == 1]
    print(
        f"first round (fresh, {args.first_epochs} epochs): {np.mean([f['seconds'] for f in first]):.0f} s,"
        f" its probe {np.mean([f['probe_seconds'] for f in first]):.0f} s"
    )
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
