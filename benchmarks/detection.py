"""Benchmark of the fraud detector: MovieLens-100K with injected attacks, SDLib's labelled set, µs/event.

Run: `nice -n 10 python benchmarks/detection.py [--seed 2] [--quick]`. Reads the shared data in place
(never copies it). The combiner's cut-offs were chosen on seed 1; report on another seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from streams.fraud import FraudDetector
from streams.fraud.evaluation import _events, evaluate, read_labels, with_synthetic_timestamps
from streams.sources.attacks import AttackSpec  # noqa: E402
from streams.sources.datasets import read_ratings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ML = DATA / "movielens-100k" / "u.data"
SDLIB = DATA / "sdlib-shilling" / "averageattack"
BASELINES = ("rdma", "degsim")


def cell(m: dict) -> str:
    best = f" (best {m['best_f1']:.3f})" if "best_f1" in m else ""
    return f"{m['precision']:.3f} {m['recall']:.3f} {m['f1']:.3f} {m['fpr']:.4f}{best}"


def grid(seed: int, kinds, sizes, fillers) -> list[dict]:
    ratings = read_ratings(ML)
    rows = []
    for kind in kinds:
        for size in sizes:
            for filler in fillers:
                m = evaluate(ratings, inject=[AttackSpec(kind, size, filler)], seed=seed, baselines=BASELINES)
                rows.append({"attack": kind, "size": size, "filler": filler, **m})
                print(
                    f"{kind:10s} {size:5.0%} {filler:5.0%} | {cell(m)} | "
                    + " | ".join(cell(m["baselines"][b]) for b in BASELINES),
                    flush=True,
                )
    return rows


def cost(path: Path, seed: int, flush_every: int = 2000) -> dict:
    """Wall time of the detector alone (update + flushes + final full flush) replaying a file."""
    events = list(_events(with_synthetic_timestamps(read_ratings(path), seed).assign(type="rating")))
    det = FraudDetector()
    t0 = time.perf_counter()
    for n, (u, i, t, ts, v) in enumerate(events, 1):
        det.update(u, i, t, ts, v)
        if n % flush_every == 0:
            det.flush()
    t1 = time.perf_counter()
    det.flush(full=True)
    t2 = time.perf_counter()
    return {
        "events": len(events),
        "us_per_event_streaming": round(1e6 * (t1 - t0) / len(events), 2),
        "final_full_flush_s": round(t2 - t1, 3),
        "us_per_event_total": round(1e6 * (t2 - t0) / len(events), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="only the 5%% / 3%% cells")
    ap.add_argument("--json", type=Path, default=None, help="also write all results here")
    args = ap.parse_args()
    kinds = ("random", "average", "bandwagon")
    sizes, fillers = ((0.05,), (0.03,)) if args.quick else ((0.01, 0.05, 0.10), (0.01, 0.03, 0.05))
    print(
        f"MovieLens-100K, seed {args.seed}: precision recall F1 FPR | combined | "
        + " | ".join(BASELINES)
        + " alone at the same cut-off (best: F1 at the threshold chosen with the labels)"
    )
    rows = grid(args.seed, kinds, sizes, fillers)
    sd = evaluate(
        read_ratings(SDLIB / "ratings.txt"), read_labels(SDLIB / "labels.txt"), seed=args.seed, baselines=BASELINES
    )
    print(
        f"SDLib averageattack (150 labelled attackers) | {cell(sd)} | "
        + " | ".join(cell(sd["baselines"][b]) for b in BASELINES)
    )
    timing = cost(ML, args.seed)
    print("detector cost on ML-100K:", json.dumps(timing))
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "grid": rows, "sdlib": sd, "cost": timing}, indent=1))


if __name__ == "__main__":
    main()
