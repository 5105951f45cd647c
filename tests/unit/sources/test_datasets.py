"""The shared interaction-file reader accepts every documented layout."""

from __future__ import annotations

import math

import pytest

from streams.sources.datasets import read_ratings


@pytest.mark.parametrize(
    "text",
    [
        "1 10 4.0 100\n2 20 3.5 200\n",
        "1\t10\t4.0\t100\n2\t20\t3.5\t200\n",
        "1,10,4.0,100\n2,20,3.5,200\n",
        "user,item,rating,timestamp\n1,10,4.0,100\n2,20,3.5,200\n",
        "userId,movieId,rating,timestamp\n1,10,4.0,100\n2,20,3.5,200\n",
    ],
)
def test_layouts(tmp_path, text):
    path = tmp_path / "r.txt"
    path.write_text(text)
    frame = read_ratings(path)
    assert frame["user"].tolist() == ["1", "2"] and frame["item"].tolist() == ["10", "20"]
    assert frame["rating"].tolist() == [4.0, 3.5] and frame["timestamp"].tolist() == [100.0, 200.0]


def test_without_rating_or_timestamp(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("a x\nb y\n")
    frame = read_ratings(path)
    assert frame["user"].tolist() == ["a", "b"]
    assert all(math.isnan(v) for v in frame["rating"]) and all(math.isnan(v) for v in frame["timestamp"])


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        read_ratings(path)
