"""BPR vs APR on MovieLens-100K: accuracy, scale-free FGSM robustness, epoch time; same seeds and budget.

    python benchmarks/quality.py [--ratings FILE] [--seeds 0,1,2] [--epochs N] [--threads 1] [--timing-rounds 6]

Protocol: leave-last-out by timestamp, 99 sampled negatives (HR@10, NDCG@10), full ranking
(Recall@20, NDCG@20); FGSM moves every embedding row by ε·‖row‖ along its BPR-loss gradient.
A bandwagon shilling attack (5% fake users, `training.bootstrap.bandwagon_probe`: the same probe as
`advrec train --from-file`) measures poisoning robustness: the target items' HR@50 among genuine
users, poisoned model vs clean model (`--no-poison` skips it).
Both models use their tuned defaults (`MFConfig`, `APRConfig`) and the same epoch budget; APR spends
the first `warmup` share of it as plain BPR. A popularity baseline is shown for scale.
The time ratios are also measured with the two models' epochs in turn (`interleaved_epochs`), so
that the machine's changes of speed fall on both alike.
Runs in about a minute per seed on one core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.sources.datasets import read_ratings  # noqa: E402
from training.bootstrap import bandwagon_probe  # noqa: E402
from training.evaluation import evaluate, leave_last_out, poisoning_lift  # noqa: E402
from training.models import PopularityRecommender, build_model  # noqa: E402
from training.offline import report_model  # noqa: E402

ML100K = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k" / "u.data")
METRICS = ("hr@10", "ndcg@10", "recall@20", "ndcg@20")


def run_seed(frame: pd.DataFrame, seed: int, epochs: int | None, poison: bool) -> tuple[dict, dict]:
    """Train BPR and APR on one seeded split; report accuracy, FGSM, and the poisoning lift."""
    split = leave_last_out(frame, seed=seed)
    report = {}
    for kind in ("bpr", "apr"):
        model = build_model(kind, seed=seed).fit(split.train, epochs=epochs)
        report[kind] = report_model(model, split, seed=seed)
        if poison:
            poisoned, targets = bandwagon_probe(split.train, seed=seed)
            bad = build_model(kind, seed=seed).fit(poisoned, epochs=epochs)
            report[kind]["poisoning"] = poisoning_lift(model, bad, list(split.test["user"]), targets, k=50)
    return report, evaluate(PopularityRecommender().fit(split.train), split)


def interleaved_epochs(frame: pd.DataFrame, seed: int, rounds: int) -> list[tuple[float, float, float, float]]:
    """(BPR s, APR s, BPR CPU s, APR CPU s) of one epoch each, the two models fitted in turn `rounds` times.

    The per-seed figures time BPR's whole fit, then APR's: a machine that slows down between the
    two moves their ratio (one seed read 2.49 against 1.54-1.69 for the others, the same code).
    Here each round fits a BPR and an all-adversarial APR (warm-up 0) for two epochs on the same
    split, in ABBA order, and times the second epoch of each (the first allocates Adam's state).
    """
    train = leave_last_out(frame, seed=seed).train
    out = []
    for n in range(rounds):
        times = {}
        for kind in ("bpr", "apr") if n % 2 == 0 else ("apr", "bpr"):
            overrides = {"warmup": 0.0} if kind == "apr" else {}
            model = build_model(kind, seed=seed, **overrides).fit(train, epochs=2)
            times[kind] = (model.epoch_seconds[-1], model.epoch_cpu_seconds[-1])
        out.append((times["bpr"][0], times["apr"][0], times["bpr"][1], times["apr"][1]))
    return out


def mean_report(reports: list[dict]) -> dict:
    """Average the numeric leaves of several eval_models reports (one per seed)."""
    first = reports[0]
    if isinstance(first, dict):
        return {k: mean_report([r[k] for r in reports]) for k in first}
    if isinstance(first, (int, float)) and any(r != first for r in reports):
        return float(np.mean(reports))
    return first


def spread(values: list[float]) -> str:
    """Mean and range of per-seed ratios."""
    return f"{np.mean(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    """Run the comparison for each seed, print the table and a JSON summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratings", default=ML100K)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--keep", type=float, default=1.0, help="keep this seeded share of the interactions (a sparser dataset)"
    )
    ap.add_argument("--no-poison", action="store_true", help="skip the shilling-attack section")
    ap.add_argument(
        "--timing-rounds",
        type=int,
        default=6,
        help="BPR and APR epochs timed in turn this many times, on the first seed's split (0: skip)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    frame = read_ratings(args.ratings)
    if args.keep < 1.0:
        frame = frame.sample(frac=args.keep, random_state=0).reset_index(drop=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    start, reports, pops = time.perf_counter(), [], []
    for seed in seeds:
        report, pop = run_seed(frame, seed, args.epochs, not args.no_poison)
        reports.append(report)
        pops.append(pop)
        bpr, apr = reports[-1]["bpr"], reports[-1]["apr"]
        print(
            f"seed {seed}: "
            + "  ".join(f"{k} ndcg@10 {r['ndcg@10']:.4f}" for k, r in reports[-1].items())
            + f"  APR/BPR time: adversarial epoch {apr['adv_epoch_seconds'] / bpr['epoch_seconds']:.2f}"
            f" (CPU {apr['adv_epoch_cpu_seconds'] / bpr['epoch_cpu_seconds']:.2f}),"
            f" budget {apr['train_seconds'] / bpr['train_seconds']:.2f}"
            f" (CPU {apr['train_cpu_seconds'] / bpr['train_cpu_seconds']:.2f})",
            flush=True,
        )
    rep, pop = mean_report(reports), mean_report(pops)
    print(
        f"\n{Path(args.ratings).name} ({len(frame)} interactions), mean of seeds {seeds}, "
        f"{rep['bpr']['epochs']} epochs each\n"
    )
    head = f"{'model':6s}" + "".join(f"{m:>10s}" for m in METRICS)
    head += "   fgsm0.1 hr/ndcg (drop)     fgsm0.25 hr/ndcg (drop)   s/epoch"
    print(head)
    print(f"{'pop':6s}" + "".join(f"{pop[m]:10.4f}" for m in METRICS))
    for name in ("bpr", "apr"):
        r = rep[name]
        line = f"{name:6s}" + "".join(f"{r[m]:10.4f}" for m in METRICS)
        for eps in ("0.1", "0.25"):
            f = r["fgsm"][eps]
            line += f"   {f['hr@10']:.4f}/{f['ndcg@10']:.4f} ({100 * (f['ndcg@10'] / r['ndcg@10'] - 1):+.1f}%)"
        print(line + f"   {r['epoch_seconds']:.3f}")
    bpr, apr = rep["bpr"], rep["apr"]
    gain = {m: 100 * (apr[m] / bpr[m] - 1) for m in METRICS}
    per_seed = [100 * (r["apr"]["ndcg@10"] / r["bpr"]["ndcg@10"] - 1) for r in reports]
    print("\nAPR vs BPR: " + "  ".join(f"{m} {g:+.1f}%" for m, g in gain.items()))
    print("APR vs BPR ndcg@10 per seed: " + " ".join(f"{g:+.1f}%" for g in per_seed))
    print(
        f"APR settings: eps={apr['eps']} ({apr['eps_mode']}), reg_adv={apr['reg_adv']}, "
        f"warmup={apr['warmup']}, dim={apr['dim']}, lr={apr['lr']}, reg={apr['reg']}"
    )
    print("\nAPR/BPR time, same epoch budget, each seed a repeat (mean [min-max]):")
    for clock, label in (("", "wall"), ("cpu_", "CPU ")):
        epoch = [r["apr"][f"adv_epoch_{clock}seconds"] / r["bpr"][f"epoch_{clock}seconds"] for r in reports]
        budget = [r["apr"][f"train_{clock}seconds"] / r["bpr"][f"train_{clock}seconds"] for r in reports]
        print(
            f"  {label}: adversarial epoch / BPR epoch {spread(epoch)}   whole budget (incl. BPR warm-up) "
            f"{spread(budget)}   BPR {bpr[f'epoch_{clock}seconds']:.3f} s/epoch, "
            f"APR adversarial {apr[f'adv_epoch_{clock}seconds']:.3f} s/epoch"
        )
    if args.timing_rounds:
        pairs = interleaved_epochs(frame, seeds[0], args.timing_rounds)
        wall = [apr_s / bpr_s for bpr_s, apr_s, _, _ in pairs]
        cpu = [apr_c / bpr_c for _, _, bpr_c, apr_c in pairs]
        warmup = apr["warmup"]
        print(
            f"  in turn ({len(pairs)} rounds, seed {seeds[0]}, one epoch of each model a round, ABBA; median "
            f"[min-max] of the rounds' ratios): adversarial epoch / BPR epoch wall {np.median(wall):.2f} "
            f"[{min(wall):.2f}-{max(wall):.2f}], CPU {np.median(cpu):.2f} [{min(cpu):.2f}-{max(cpu):.2f}]; "
            f"whole budget at warm-up {warmup} ({warmup} + {1 - warmup} x the epoch ratio, CPU) "
            f"{warmup + (1 - warmup) * np.median(cpu):.2f}"
        )
    print(
        "  accuracy beside it: "
        + "  ".join(f"{m} BPR {bpr[m]:.4f} APR {apr[m]:.4f} ({gain[m]:+.1f}%)" for m in ("hr@10", "ndcg@10"))
    )
    if "poisoning" in bpr:
        print(
            "\nBandwagon attack (5% fake users, each rating 5 unpopular targets and the 3 most popular "
            "items at the top rating plus 27 random filler items), target HR@50 among genuine users:"
        )
        for name in ("bpr", "apr"):
            p = rep[name]["poisoning"]
            print(
                f"  {name}: clean {p['hr@50_clean']:.4f} -> poisoned {p['hr@50_poisoned']:.4f} (lift {p['lift']:+.4f})"
            )
    print(f"total {time.perf_counter() - start:.0f}s")
    print(
        json.dumps(
            {"seeds": seeds, "pop": pop, **rep, "apr_gain_percent": gain, "apr_ndcg10_gain_per_seed": per_seed},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
