"""The shared interaction-file reader accepts every documented layout."""

from __future__ import annotations

import math

import pytest

from streams.contract.errors import UserError
from streams.sources.datasets import check_dataset, detect_format, open_events, parse_mapping, read_ratings


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


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("u.data", "1\t10\t5\t881250950\n", "movielens"),
        ("ratings.csv", "userId,movieId,rating,timestamp\n1,10,4.0,964982703\n", "ratings"),
        ("ratings.dat.csv", "1,10,4.0,964982703\n", "ratings"),
        ("clicks.tsv", "user_id\titem_id\tts\nu1\ti1\t100\n", "ratings"),
        ("UserBehavior.csv", "1,2268318,2520377,pv,1511544070\n", "taobao"),
        ("slice.csv", "1,2268318,2520377,buy,1511544070\n", "taobao"),
        ("orders.csv", "customer,sku,when,price\nc1,s1,100,9.99\n", "unknown"),
    ],
)
def test_detect_format(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    assert detect_format(path) == expected


def test_movielens_ratings_csv_replays_without_a_map(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,10,4.0,200\n2,20,3.5,100\n")
    events = list(open_events(path))
    assert [(e["user_id"], e["item_id"], e["type"], e["value"]) for e in events] == [
        ("2", "20", "rating", 3.5),
        ("1", "10", "rating", 4.0),
    ]


def test_an_unknown_file_names_its_columns_and_a_fitting_map(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer,sku,when,price\nc1,s1,100,9.99\n")
    with pytest.raises(UserError) as error:
        check_dataset(path)
    message = str(error.value)
    assert "customer, sku, when, price" in message
    assert "--map user_id=customer,item_id=sku,ts=when" in message
    mapping = parse_mapping("user_id=customer,item_id=sku,ts=when")
    assert check_dataset(path, mapping) == "table"
    assert [e["user_id"] for e in open_events(path, mapping=mapping)] == ["c1"]
