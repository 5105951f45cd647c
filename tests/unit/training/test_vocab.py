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
