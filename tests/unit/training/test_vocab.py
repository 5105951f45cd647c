import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from training.vocab import Vocabulary


def test_indices_follow_first_seen_order_and_never_change():
    v = Vocabulary(["b", "a", "b"])
    assert v.ids == ["b", "a"]
    assert v.add(["c", "a", "d", "c"]).tolist() == [2, 1, 3, 2]
    assert v.lookup(["d", "zz", "b"]).tolist() == [3, -1, 0]
    assert len(v) == 4 and "c" in v and "zz" not in v


def test_ids_are_strings_and_round_trip():
    v = Vocabulary([3, 1, 3])
    assert v.ids == ["3", "1"] and v.lookup(["1"]).tolist() == [1]
    assert Vocabulary(v.to_list()) == v


@given(st.lists(st.one_of(st.text(max_size=4), st.integers(-3, 3)), max_size=30))
def test_building_from_a_list_is_adding_it_to_an_empty_vocabulary(ids):
    built, added = Vocabulary(ids), Vocabulary()
    assert added.add(ids).tolist() == built.lookup(ids).tolist()
    assert built.ids == added.ids and built == added
    assert Vocabulary(built.to_list()) == built  # distinct strings: the direct path


def test_series_arrays_and_missing_ids_are_looked_up_as_their_strings():
    v = Vocabulary(["a", "1", "2.5"])
    assert v.lookup(pd.Series(["2.5", "a", None])).tolist() == [2, 0, -1]  # pandas' own str dtype
    assert v.lookup(np.array([1, 7])).tolist() == [1, -1]
    assert v.lookup([2.5, float("nan"), None, pd.NA], missing=-9).tolist() == [2, -9, -9, -9]
    assert v.add(pd.Series(["b", "a", "b"])).tolist() == [3, 0, 3] and v.ids == ["a", "1", "2.5", "b"]


@given(
    st.lists(st.text(max_size=3), max_size=20),
    st.lists(st.one_of(st.text(max_size=3), st.integers(-3, 3), st.none()), max_size=30),
)
def test_lookup_is_the_dict_of_first_seen_indices(known, asked):
    index = {key: n for n, key in enumerate(dict.fromkeys(known))}
    expected = [-1 if key is None else index.get(str(key), -1) for key in asked]
    assert Vocabulary(known).lookup(asked).tolist() == expected
    assert Vocabulary(known).lookup(pd.Series(asked, dtype=object)).tolist() == expected
