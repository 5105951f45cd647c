"""Pair sets: rebuilt from saved keys exactly, whatever order the keys come in."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from training.sampling import PairSet

pairs = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=60)


@given(pairs)
def test_a_set_rebuilt_from_its_keys_is_the_same_set(rows):
    users, items = np.array([u for u, _ in rows], np.int64), np.array([i for _, i in rows], np.int64)
    original = PairSet(users, items)
    again = PairSet.from_keys(original.keys)
    assert again.keys.tolist() == original.keys.tolist() == sorted(set(original.keys.tolist()))
    assert again.keys is not original.keys  # a copy: growing one set never changes the other
    assert again.contains(users, items).all()


@given(pairs)
def test_keys_out_of_order_or_repeated_are_sorted_and_deduplicated(rows):
    keys = PairSet(np.array([u for u, _ in rows], np.int64), np.array([i for _, i in rows], np.int64)).keys
    shuffled = np.concatenate([keys[::-1], keys])
    assert PairSet.from_keys(shuffled).keys.tolist() == keys.tolist()
