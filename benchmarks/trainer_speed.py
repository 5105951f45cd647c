"""Training throughput of BPR and APR: (user, positive, negative) samples per second, CPU and CUDA.

    python benchmarks/trainer_speed.py [--ratings FILE] [--synthetic N] [--epochs 3] [--threads 1]

Samples/s = training triples / wall time of the epochs (negative sampling included, first epoch of
each run dropped as warm-up). Prints one line per device and model, then a JSON summary; the CUDA
rows appear whenever CUDA is available (large batches and bf16 autocast there, as in training).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.sources.datasets import read_ratings  # noqa: E402
from training.models import build_model  # noqa: E402

ML100K = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k" / "u.data")


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """n interactions with Zipf-like user and item popularity (no real data needed)."""
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.3, n) % max(n // 50, 10)
    items = rng.zipf(1.2, n) % max(n // 20, 10)
    return pd.DataFrame(
        {"user": users.astype(str), "item": items.astype(str), "rating": 1.0, "timestamp": np.arange(n, dtype=float)}
    )


def measure(kind: str, frame: pd.DataFrame, device: str, epochs: int) -> dict[str, float]:
    """Samples per second and mean epoch seconds of one model kind on one device."""
    model = build_model(kind, device=device, warmup=0.0) if kind == "apr" else build_model(kind, device=device)
    model.fit(frame, epochs=epochs + 1)
    seconds = float(np.mean(model.epoch_seconds[1:]))
    return {
        "samples_per_s": len(model.seen) / seconds,
        "epoch_seconds": seconds,
        "batch_size": model.config.gpu_batch_size if device == "cuda" else model.config.batch_size,
    }


def main() -> None:
    """Parse options, time each model on each device, print the table and JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratings", default=ML100K)
    ap.add_argument("--synthetic", type=int, default=0, help="use N synthetic interactions instead")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    frame = synthetic(args.synthetic) if args.synthetic else read_ratings(args.ratings)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out: dict[str, dict[str, dict[str, float]]] = {}
    for device in devices:
        for kind in ("bpr", "apr"):
            got = measure(kind, frame, device, args.epochs)
            out.setdefault(device, {})[kind] = got
            print(
                f"{device:5s} {kind}: {got['samples_per_s']:>12,.0f} samples/s  "
                f"{got['epoch_seconds']:.3f} s/epoch  batch {got['batch_size']}",
                flush=True,
            )
        ratio = out[device]["apr"]["epoch_seconds"] / out[device]["bpr"]["epoch_seconds"]
        out[device]["apr_over_bpr_epoch_time"] = ratio
        print(f"{device:5s} APR/BPR epoch time: {ratio:.2f}")
    if "cuda" not in out:
        print("cuda : not available on this machine")
    print(json.dumps({"interactions": len(frame), "threads": args.threads, **out}, indent=2))


if __name__ == "__main__":
    main()
