"""Benchmark of the fraud detector (fraud-2): every figure of docs/detection.md in one run.

Run: `OMP_NUM_THREADS=1 nice -n 10 python benchmarks/detection.py [--quick] [--json out.json]`
(about a minute on 2 shared cores; --quick about 35 s). Reads the shared data in place (never copies it).

Tuning protocol: the detector's cut-offs were chosen on ML-100K seed 0 (rating attacks, 5 % / 3 %)
and on the simulator seed 0 (click farm); this script never reports those seeds. Reported:
ML-100K seeds 1 and 2 (--quick: 1), SDLib's labelled FilmTrust average attack (timestamp order
seed 1; its design was looked at during development, see docs/detection.md), and the demo's
click farm on the simulator, seeds 1 and 2. Every cell: attackers spread over the data's time span
(or the demo's own window), opaque ids, batches of 500 events, a full rescore at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from streams.fraud import FraudDetector  # noqa: E402
from streams.fraud.baselines import baseline_scores  # noqa: E402
from streams.fraud.evaluation import events_frame, final_trust, prepare, read_labels, replay, score_replay  # noqa: E402
from streams.fraud.supervised import cross_validate, few_labels, user_features  # noqa: E402
from streams.fraud.trust import TrustPolicy, gate_shares  # noqa: E402
from streams.sources.attacks import AttackSpec, parse_inject  # noqa: E402
from streams.sources.datasets import read_ratings  # noqa: E402
from streams.sources.simulator import simulated_events  # noqa: E402

warnings.filterwarnings("ignore")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ML = DATA / "movielens-100k" / "u.data"
SDLIB = DATA / "sdlib-shilling" / "averageattack"
BATCH = 500
TARGETS = {  # the targets
    "unsupervised ML F1 (each)": 0.90,
    "unsupervised ML FPR (max)": 0.01,
    "unsupervised FilmTrust F1": 0.90,
    "supervised ML F1 (each)": 0.99,
    "supervised FilmTrust F1": 0.987,
    "click farm F1 (each)": 0.90,
    "trust gate: attacker events kept out (each)": 0.90,
}


def run_cell(ratings: pd.DataFrame, labels, specs, seed: int, folds: int | None = 5, few: bool = False) -> dict:
    """One replay: end-of-replay, streaming, trust gate, cost, baselines, and the supervised k-fold figures."""
    data = prepare(ratings, labels, specs, seed)
    det = FraudDetector()
    rep = replay(data.frame, det, BATCH)
    out = score_replay(det, rep, data.attackers, TrustPolicy())
    # the same replay gated without the swarm hold: what holding swarms buys, and what it costs genuine users
    plain = TrustPolicy(hold_swarms=False)
    without = gate_shares(plain, rep, data.attackers, final_trust(plain, det, sorted(rep.final_scores)))
    out["trust_gate_without_swarms"] = {k: round(v, 4) for k, v in without.items()}
    marked = {u for u in rep.final_scores if det.swarm_of(u) is not None}
    attackers = data.attackers.keys()
    out["swarm_marked"] = {"attackers": len(marked & attackers), "genuine": len(marked - attackers)}
    out["cost"] = {k: round(v, 2) for k, v in rep.us_per_event().items()}
    out["baselines"] = baseline_scores(data.frame, data.attackers)
    if folds:
        users, x = user_features(det, sorted(rep.final_scores))
        y = np.array([u in data.attackers for u in users], bool)
        cv = cross_validate(x, y, folds, seed)
        out["supervised"] = {k: v for k, v in cv.items() if k != "proba"}
        if few:
            unsup = np.array([det.score(u).score for u in users])
            draws = [few_labels(x, y, unsup, 20, 200, s) for s in range(5)]
            out["few_labels"] = {k: float(np.mean([d[k]["f1"] for d in draws])) for k in draws[0] if k in FEW}
    return out


FEW = ("model", "unsupervised", "average", "blend")


def line(name: str, m: dict) -> str:
    s, g, c = m["streaming"], m["trust_gate"], m["cost"]
    w, sw = m["trust_gate_without_swarms"], m["swarm_marked"]
    med_e = "—" if s["median_events_to_flag"] is None else f"{s['median_events_to_flag']:.0f}"
    sec = s["median_seconds_to_flag"]
    med_s = "—" if sec is None else f"{sec:.0f} s" if sec < 3600 else f"{sec / 3600:.1f} h"
    text = (
        f"{name:34s} end P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} FPR {100 * m['fpr']:.2f}%"
        f" | stream P {s['precision']:.3f} R {s['recall']:.3f}, attacker events flagged at close "
        f"{s['attacker_events_flagged_at_close']:.3f}, median to flag {med_e} events / {med_s}"
        f" | gate kept out {g['attacker_events_kept_out']:.3f}"
        f" (held at close {g['attacker_events_held_at_close']:.3f}), genuine delayed"
        f" {100 * g['genuine_events_delayed']:.1f}%, never trained {100 * g['genuine_events_never_trained']:.1f}%"
        f" | {c['us_per_event']:.1f} µs/event"
        f"\n{'':35s}swarm hold: {sw['attackers']} attackers / {sw['genuine']} genuine accounts marked; without it"
        f" kept out {w['attacker_events_kept_out']:.3f}, genuine delayed {100 * w['genuine_events_delayed']:.1f}%,"
        f" never trained {100 * w['genuine_events_never_trained']:.1f}%"
    )
    b = m.get("baselines") or {}
    if b:
        cells = (
            f"{k} alone (z >= 3.5) F1 {b[k]['f1']:.3f} FPR {100 * b[k]['fpr']:.2f}% "
            f"[label-chosen best {b[k]['best_f1']:.3f}]"
            for k in ("rdma", "degsim")
        )
        text += "\n" + " " * 35 + " | ".join(cells)
    if "supervised" in m:
        sup = m["supervised"]
        text += f"\n{'':35s}supervised 5-fold CV (LightGBM): P {sup['precision']:.3f} R {sup['recall']:.3f}"
        text += f" F1 {sup['f1']:.3f}"
    if "few_labels" in m:
        fl = m["few_labels"]
        text += (
            f"\n{'':35s}few labels (20 attackers + 200 genuine, mean of 5 draws), F1 at 0.5: model {fl['model']:.3f},"
            f" unsupervised {fl['unsupervised']:.3f}, 50/50 average {fl['average']:.3f}, review blend {fl['blend']:.3f}"
        )
    return text


def simulator_frame(seed: int, n_events: int = 30_000) -> tuple[pd.DataFrame, float, float]:
    """The demo's genuine stream (`advrec demo` defaults) as a frame, and its middle and last timestamps."""
    ev = list(simulated_events(n_events=n_events, seed=seed))
    frame = events_frame(ev)
    return frame, ev[len(ev) // 2]["ts"], ev[-1]["ts"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one reported seed per cell")
    ap.add_argument("--json", type=Path, default=None, help="also write all results here")
    args = ap.parse_args()
    started = time.time()
    seeds = (1,) if args.quick else (1, 2)
    results: dict = {"ml": {}, "sdlib": {}, "click_farm": {}}
    print("Cut-offs tuned on: ML-100K seed 0 (rating attacks 5 %/3 %) and simulator seed 0 (click farm).")
    print("Reported below: other seeds only. Batches of 500 events; 'end' = after a final full rescore.\n")

    ml = read_ratings(ML)
    print(f"== ML-100K, unsupervised, attackers spread over the data's time span, 5 % / 3 % (seeds {seeds})")
    for seed in seeds:
        for kind in ("average", "random", "bandwagon"):
            m = run_cell(ml, None, [AttackSpec(kind, 0.05, 0.03)], seed, few=kind == "average" and seed == seeds[0])
            results["ml"][f"{kind}/s{seed}"] = m
            print(line(f"{kind} seed {seed}", m), flush=True)

    print("\n== SDLib FilmTrust average attack (150 labelled attackers), target clipped to 4.0, order seed 1")
    sd = read_ratings(SDLIB / "ratings.txt")
    m = run_cell(sd, read_labels(SDLIB / "labels.txt"), [], 1, few=True)
    results["sdlib"]["average/clipped"] = m
    print(line("SDLib average (clipped)", m), flush=True)

    print("\n== Demo-like click farm on the simulator (30,000 events, click_farm:0.05:0.02 from mid-stream)")
    for seed in seeds:
        frame, middle, last = simulator_frame(seed)
        for timing in ("spread", "waves"):
            # the demo's call (streams/local/demo.py build_stream; its default timing is spread), and the
            # old demo's bursts ("waves")
            span = max(60.0, (last - middle) * 0.6)
            spec = parse_inject("click_farm:0.05:0.02", start_ts=middle, span_s=span, timing=timing)
            m = run_cell(frame, None, [spec], seed, folds=None)
            results["click_farm"][f"{timing}/s{seed}"] = m
            print(line(f"{timing} seed {seed}", m), flush=True)
        # the demo's default now: a bigger farm with filler drawn by popularity (it lifts its target)
        spec = parse_inject(
            "click_farm:0.08:0.02", start_ts=middle, span_s=max(60.0, (last - middle) * 0.6), filler_choice="popular"
        )
        m = run_cell(frame, None, [spec], seed, folds=None)
        results["click_farm"][f"demo-default/s{seed}"] = m
        print(line(f"demo default (8 %, popular) s{seed}", m), flush=True)

    print("\n== Cost: ML-100K average seed 1, the detector alone (update + per-batch flush), 3 replays per batch size")
    data = prepare(ml, None, [AttackSpec("average", 0.05, 0.03)], 1)
    results["cost"] = {}
    for batch in (500, 2000):
        runs = [replay(data.frame, FraudDetector(), batch).us_per_event() for _ in range(2 if args.quick else 3)]
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        results["cost"][f"batch {batch}"] = {**med, "runs": [r["us_per_event"] for r in runs]}
        each = ", ".join(f"{r['us_per_event']:.1f}" for r in runs)
        print(
            f"batches of {batch:5d}: median {med['us_per_event']:.1f} µs/event (update {med['update_us']:.1f}, "
            f"flush {med['flush_us']:.1f}; runs {each}); "
            f"final full rescore {med['final_full_s']:.2f} s",
            flush=True,
        )

    ml_cells = list(results["ml"].values())
    cf_cells = list(results["click_farm"].values())
    sdm = results["sdlib"]["average/clipped"]
    every = ml_cells + cf_cells + [sdm]
    checks = {
        "unsupervised ML F1 (each)": min(c["f1"] for c in ml_cells),
        "unsupervised ML FPR (max)": max(c["fpr"] for c in ml_cells),
        "unsupervised FilmTrust F1": sdm["f1"],
        "supervised ML F1 (each)": min(c["supervised"]["f1"] for c in ml_cells),
        "supervised FilmTrust F1": sdm["supervised"]["f1"],
        "click farm F1 (each)": min(c["f1"] for c in cf_cells),
        "trust gate: attacker events kept out (each)": min(c["trust_gate"]["attacker_events_kept_out"] for c in every),
    }
    print("\n== Targets")
    for name, got in checks.items():
        want = TARGETS[name]
        ok = got <= want if "max" in name else got >= want
        print(f"{name:42s} {got:.4f} (target {'<=' if 'max' in name else '>='} {want}) {'met' if ok else 'NOT MET'}")
    print(f"all done in {time.time() - started:.0f} s")
    results["targets"] = checks
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
