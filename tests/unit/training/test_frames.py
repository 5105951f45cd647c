import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from training.frames import is_in

keys = st.text(alphabet="ab\x00", max_size=3)


@given(st.lists(st.one_of(keys, st.none()), max_size=30), st.lists(keys, max_size=30))
def test_is_in_answers_as_pandas_isin(column, values):
    series = pd.Series(column, dtype="str")
    assert is_in(series, values).tolist() == series.isin(values).tolist()
    assert is_in(series, set(values)).tolist() == series.isin(values).tolist()


def test_is_in_takes_a_series_of_values_and_an_empty_column():
    assert is_in(pd.Series(["u\x00i", "v\x00j"]), pd.Series(["v\x00j"])).tolist() == [False, True]
    assert is_in(pd.Series([], dtype="str"), {"a"}).tolist() == []
