"""The text-encoder interface, the embedding cache, lazy loading, and both packaged encoders offline."""

from __future__ import annotations

import numpy as np
import pytest

from training.text.encoders import (
    CachedEncoder,
    EmbeddingCache,
    HashingEncoder,
    LazyEncoder,
    TextEncoder,
    encoder_meta,
    get_encoder,
    l2_normalise,
    text_key,
)


class CountingEncoder(HashingEncoder):
    def __init__(self, version: str = "1") -> None:
        super().__init__(dim=32)
        self.version = version
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return super().encode(texts)


def test_l2_normalise_keeps_zero_rows():
    x = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_hashing_encoder_contract():
    enc = HashingEncoder(64)
    assert isinstance(enc, TextEncoder)
    out = enc.encode(["a red car", "", "A red CAR"])
    assert out.shape == (3, 64) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1, 0, 1], rtol=1e-6)
    np.testing.assert_array_equal(out[0], out[2])
    assert encoder_meta(enc) == {"name": "hashing", "version": "1/64", "dim": 64}


def test_cache_miss_then_hit(tmp_path):
    enc = CountingEncoder()
    cached = CachedEncoder(enc, EmbeddingCache(tmp_path / "c.sqlite"))
    first = cached.encode(["x y", "z", "x y"])
    assert enc.calls == [["x y", "z"]]  # duplicates encoded once
    assert cached.cache.misses == 3 and cached.cache.hits == 0
    second = cached.encode(["z", "x y", "new"])
    assert enc.calls[-1] == ["new"]  # only the miss is encoded
    assert cached.cache.hits == 2 and cached.cache.misses == 4
    np.testing.assert_array_equal(second[0], first[1])
    np.testing.assert_array_equal(second[1], first[0])
    assert len(cached.cache) == 3


def test_cache_persists_and_is_keyed_by_version(tmp_path):
    path = tmp_path / "c.sqlite"
    CachedEncoder(CountingEncoder("1"), EmbeddingCache(path)).encode(["hello"])
    enc1 = CountingEncoder("1")
    CachedEncoder(enc1, EmbeddingCache(path)).encode(["hello"])  # another process, same file
    assert enc1.calls == []
    enc2 = CountingEncoder("2")  # new weights -> new version
    CachedEncoder(enc2, EmbeddingCache(path)).encode(["hello"])
    assert enc2.calls == [["hello"]]
    assert text_key("hello") == text_key("hello") != text_key("hello ")


def test_get_encoder_by_name_with_cache_path(tmp_path):
    enc = get_encoder("hashing", cache=tmp_path / "c.sqlite")
    assert isinstance(enc, CachedEncoder) and enc.dim == 256 and enc.name == "hashing"
    assert enc.encode([]).shape == (0, 256)
    with pytest.raises(ValueError, match="unknown text encoder"):
        get_encoder("bert-from-the-internet")


def test_lazy_encoder_loads_only_on_a_miss(tmp_path):
    built = []

    def factory():
        built.append(1)
        return HashingEncoder(16)

    ref = HashingEncoder(16)
    lazy = LazyEncoder(factory, ref.name, ref.version, ref.dim)
    cached = CachedEncoder(lazy, EmbeddingCache(tmp_path / "c.sqlite"))
    CachedEncoder(ref, cached.cache).encode(["a", "b"])  # filled by someone else
    np.testing.assert_array_equal(cached.encode(["b", "a"]), ref.encode(["b", "a"]))
    assert built == [] and not lazy.loaded  # all hits: never built
    cached.encode(["c"])
    assert built == [1] and lazy.loaded
    lazy.release()
    assert not lazy.loaded
    with pytest.raises(ValueError):
        LazyEncoder(factory, "hashing", "other-version", 16).encode(["x"])


def test_wordllama_offline(tmp_path):
    enc = get_encoder("wordllama", model_dir=tmp_path)
    out = enc.encode(["Genres: Animation, Comedy.", "Genres: Crime, Thriller.", ""])
    assert out.shape == (3, 256) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1, 1, 0], atol=1e-5)
    assert enc.name == "wordllama" and enc.version.startswith("0.4.0")
    lazy = get_encoder("wordllama", lazy=True, model_dir=tmp_path)
    assert (lazy.name, lazy.version, lazy.dim) == (enc.name, enc.version, enc.dim) and not lazy.loaded


def test_minilm_offline_and_lazy_identity(tmp_path):
    lazy = get_encoder("minilm", lazy=True, model_dir=tmp_path)
    assert (lazy.name, lazy.dim) == ("minilm", 384) and not lazy.loaded
    out = lazy.encode(["A man is eating food.", "A man is eating a piece of bread.", "A plane takes off.", ""])
    assert lazy.loaded and out.shape == (4, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1, 1, 1, 0], atol=1e-5)
    assert out[0] @ out[1] > out[0] @ out[2] + 0.3  # it understands the sentences
