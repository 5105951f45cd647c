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
  then the same poisoned round fitted fresh (as the trainer fits the round after a challenger
  rejected for its recipe: a new model on every row, judged against the champion);
* false rejects: clean rounds the new gate rejects (and holds), next to the old gate's decisions
  on the very same challengers (the old rule is read from git: `OLD_GATE` below; it compared
  with the champion's tags from its own round and passed a missing poisoning figure);
* the red-team probe's cost: its seconds on a warm round over the round's own seconds, and that
  cost amortised over `--probe-every` rounds (the trainer's default: 5).

Bounds were set a priori (docs/operations.md), not tuned on this run.
"""

from __future__ import annotations

import argparse
import json
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
from training.stream.trainer import Trainer, TrainerConfig, Verdict  # noqa: E402
from training.testing import MemorySource, window_batch  # noqa: E402

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


def max_jump(report: dict) -> float:
    """The largest rise of an item's exposure in a round's audit."""
    return max((i["challenger"] - i["champion"] for i in report.get("exposure", {}).get("items", [])), default=0.0)


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
        batches.append(window_batch(uri, rows, k))
    config = TrainerConfig(
        model="apr", epochs=args.epochs, first_epochs=args.first_epochs, seed=seed, probe_every=args.probe_every
    )
    gate = GateConfig()
    rounds = Rounds(gate, old)
    state = scratch / f"seed{seed}"
    clean_trainer = trainer(state, files, rounds, config)
    run(clean_trainer, MemorySource(batches[:-1], per_poll=1), Quarantine(), idle_timeout=0)

    # Round 5 from the same saved state: clean, then with each attack in its window.
    saved = scratch / f"seed{seed}-before-round-5"
    shutil.copytree(state, saved)
    before = (rounds.champion, rounds.old_champion)
    clean_rows = len(rounds.rows)
    run(trainer(state, files, rounds, config), MemorySource(batches[-1:]), Quarantine(), idle_timeout=0)
    clean_final = rounds.rows[-1]
    last, genuine = files["mem://w4"], ratings.iloc[: cuts[-2]]
    poisoned_finals = []
    for n_attack, text in enumerate(args.attack):
        spec = parse_inject(text, start_ts=float(last["ts"].min()), span_s=float(last["ts"].max() - last["ts"].min()))
        plan = plan_attack(spec, summarize(genuine), seed=seed)
        attack = pd.DataFrame(list(plan.events()))
        attack = attack.assign(
            user=attack["user_id"], item=attack["item_id"], rating=attack["value"], timestamp=attack["ts"]
        )
        poisoned = pd.concat([last, as_window(attack, int(last["offset"].iloc[-1]) + 1)], ignore_index=True)
        uri = f"mem://w4-attack{n_attack}"
        files[uri] = poisoned.sort_values("ts", kind="stable").reset_index(drop=True)
        attacked_state = scratch / f"seed{seed}-attack{n_attack}"
        shutil.copytree(saved, attacked_state)
        rounds.champion, rounds.old_champion = before
        batch = window_batch(uri, poisoned, 9)
        run(trainer(attacked_state, files, rounds, config), MemorySource([batch]), Quarantine(), idle_timeout=0)
        warm_row = rounds.rows[-1]
        # The same poisoned round fitted fresh, as the trainer fits the round after a rejected recipe.
        fresh_state = scratch / f"seed{seed}-attack{n_attack}-fresh"
        shutil.copytree(saved, fresh_state)
        doc = json.loads((fresh_state / "state.json").read_text())
        (fresh_state / "state.json").write_text(json.dumps({**doc, "refit": True}))
        rounds.champion, rounds.old_champion = before
        run(trainer(fresh_state, files, rounds, config), MemorySource([batch]), Quarantine(), idle_timeout=0)
        poisoned_finals.append(
            {
                "attack": text,
                "row": warm_row,
                "fresh_row": rounds.rows[-1],
                "target": plan.targets[0],
                "accounts": len(plan.users),
                "events_per_account": len(attack) / max(len(plan.users), 1),
            }
        )
    return {
        "seed": seed,
        "rows": rounds.rows[:clean_rows] + [clean_final],
        "clean_final": clean_final,
        "poisoned": poisoned_finals,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-epochs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--probe-every", type=int, default=2, help="so that warm rounds run the probe too")
    parser.add_argument(
        "--attack",
        nargs="+",
        default=["bandwagon:0.05:0.005", "bandwagon:0.15:0.005"],
        help="TYPE:ATTACK_SIZE:FILLER_SIZE, each run on round 5",
    )
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
    print("round 5 with each attack (generator's own target choice), fresh accounts not flagged\n")
    print("exposure audit of round 5: the target's share of audited trusted users' top-10 lists, challenger / champion")
    print("('-': its share did not rise); carried = share of its new rows from untrusted accounts; max jump over items")
    for text in args.attack:
        print(f"\nattack {text}")
        print(
            "seed  target  accounts  ev/acct | poisoned: target chal/champ  carried  max jump | clean: max jump"
            " | new gate (poisoned, clean) | old gate (poisoned, clean)"
        )
        for r in results:
            c = r["clean_final"]
            (a,) = [a for a in r["poisoned"] if a["attack"] == text]
            p = a["row"]
            tp = target_row(p["report"], a["target"])
            share = f"{tp['challenger']:.3f}/{tp['champion']:.3f}" if tp["challenger"] == tp["challenger"] else "-"
            print(
                f"{r['seed']:>4}  {a['target']:>6}  {a['accounts']:>8}  {a['events_per_account']:>7.1f} |"
                f" {share:>26}  {tp['carried']:>7.2f}  {max_jump(p['report']):>8.3f} | {max_jump(c['report']):>15.3f} |"
                f" {p['new'].action:>8}, {c['new'].action:<16} | {p['old'].action:>8}, {c['old'].action}"
            )
            alarms = exposure_alarms(p["report"].get("exposure"), GateConfig())
            if alarms:
                print(f"      exposure alarms: {', '.join(x['item'] for x in alarms)}; {p['new'].reasons[0][:160]}")
            f = a["fresh_row"]
            tf = target_row(f["report"], a["target"])
            risen = tf["challenger"] == tf["challenger"]
            fresh_share = f"{tf['challenger']:.3f}/{tf['champion']:.3f}" if risen else "-"
            why = "; ".join(reason[:90] for reason in f["new"].reasons if not reason.startswith("not_worse"))
            print(f"      fitted fresh: target {fresh_share}, carried {tf['carried']:.2f}: {f['new'].action} ({why})")
    clean = [row for r in results for row in r["rows"] if row["round"] > 1]
    count = {
        g: {a: sum(row[g].action == a for row in clean) for a in ("promote", "hold", "reject")} for g in ("new", "old")
    }
    poisoned_passed = {
        (g, text): sum(a["row"][g].promoted for r in results for a in r["poisoned"] if a["attack"] == text)
        for g in ("new", "old")
        for text in args.attack
    }
    fresh_passed = {
        text: sum(a["fresh_row"]["new"].promoted for r in results for a in r["poisoned"] if a["attack"] == text)
        for text in args.attack
    }
    print(f"\nclean rounds 2-5 over {args.seeds} seeds: {len(clean)}")
    for g in ("new", "old"):
        passed = ", ".join(f"{t} {poisoned_passed[g, t]}/{len(results)}" for t in args.attack)
        print(
            f"  {g} gate: promote {count[g]['promote']}, hold {count[g]['hold']}, reject {count[g]['reject']}"
            f"  (false rejects {count[g]['reject'] / max(len(clean), 1):.0%}); poisoned round 5 promoted: {passed}"
        )
    passed = ", ".join(f"{t} {fresh_passed[t]}/{len(results)}" for t in args.attack)
    print(f"  new gate, the poisoned round 5 fitted fresh (after a rejected recipe): promoted {passed}")
    for g in ("new", "old"):
        reasons = [reason.split(":")[0] for row in clean if not row[g].promoted for reason in row[g].reasons]
        print(f"  {g} gate's reasons on clean rounds:", dict(pd.Series(reasons, dtype=str).value_counts()))

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
    lifts = [row["report"]["poisoning"]["lift"] for r in results for row in r["rows"] if row["report"].get("poisoning")]
    print(
        f"probe's target HR@50 lift on clean rounds: {min(lifts):+.4f} .. {max(lifts):+.4f}"
        f" (bound {GateConfig().max_poisoning_lift})"
    )
    first = [row["report"] for r in results for row in r["rows"] if row["round"] == 1]
    print(
        f"first round (fresh, {args.first_epochs} epochs): {np.mean([f['seconds'] for f in first]):.0f} s,"
        f" its probe {np.mean([f['probe_seconds'] for f in first]):.0f} s"
    )
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
