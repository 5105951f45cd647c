"""Dataset replays and the simulator produce contract-valid events, deterministically."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pandas as pd
import pytest

from streams.sources.datasets import movielens_events, table_events, taobao_events
from streams.sources.simulator import simulated_events
from streams.worker.validation import ValidationLimits, parse_event
from tests.paths import DATA

LIMITS = ValidationLimits(max_future_skew_s=10**12)


def valid(events):
    for event in events:
        parse_event(json.dumps(event).encode(), LIMITS, 0.0)
    return events


def test_movielens_ratings_and_implicit_mapping(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t10\t5\t881250950\n2\t20\t3\t881250949\n1\t30\t4\t881250951\n")
    ratings = valid(list(movielens_events(path)))
    assert [e["user_id"] for e in ratings] == ["2", "1", "1"]  # time order
    assert [(e["type"], e["value"]) for e in ratings] == [("rating", 3.0), ("rating", 5.0), ("rating", 4.0)]
    implicit = list(movielens_events(path, implicit_threshold=4))
    assert [e["type"] for e in implicit] == ["click", "purchase", "purchase"]
    assert all(e["value"] is None for e in implicit)
    assert [e["event_id"] for e in ratings] == [e["event_id"] for e in movielens_events(path)]


def test_taobao_behaviours(tmp_path):
    path = tmp_path / "UserBehavior.csv"
    path.write_text("1,100,7,pv,1511658000\n1,100,7,cart,1511658001\n2,100,7,fav,1511658002\n2,100,7,buy,1511658003\n")
    events = valid(list(taobao_events(path)))
    assert [e["type"] for e in events] == ["click", "click", "click", "purchase"]


def test_taobao_rejects_unknown_behaviours(tmp_path):
    path = tmp_path / "UserBehavior.csv"
    path.write_text("1,100,7,share,1511658000\n")
    with pytest.raises(ValueError, match="share"):
        list(taobao_events(path))


def test_generic_table_with_a_column_mapping(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame(
        {
            "who": ["a", "b"],
            "what": ["x", "y"],
            "when": [1.6e9, 1.6e9 + 1],
            "kind": ["click", "purchase"],
            "price": [None, 3.5],
        }
    ).to_parquet(path)
    events = valid(
        list(table_events(path, {"user_id": "who", "item_id": "what", "ts": "when", "type": "kind", "value": "price"}))
    )
    assert [(e["user_id"], e["type"], e["value"]) for e in events] == [("a", "click", None), ("b", "purchase", 3.5)]
    with pytest.raises(ValueError, match="no column"):
        list(table_events(path, {"user_id": "nobody", "item_id": "what", "ts": "when"}))


def test_simulator_is_deterministic_realistic_and_valid():
    first = valid(list(simulated_events(n_events=3000, n_users=300, n_items=200, seed=5)))
    assert first == list(simulated_events(n_events=3000, n_users=300, n_items=200, seed=5))
    assert first != list(itertools.islice(simulated_events(n_events=3000, n_users=300, n_items=200, seed=6), 3000))
    assert len(first) == 3000 and len({e["event_id"] for e in first}) == 3000
    assert all(a["ts"] <= b["ts"] for a, b in zip(first, first[1:]))
    kinds = Counter(e["type"] for e in first)
    assert kinds["click"] > 5 * kinds["purchase"] > 0
    items = Counter(e["item_id"] for e in first).most_common()
    top_tenth = sum(n for _, n in items[: len(items) // 10])
    assert top_tenth > 0.3 * len(first)  # popularity skew: the top 10% of items draw >30% of events
    sessions = Counter(e["session_id"] for e in first)
    assert 1 < sum(sessions.values()) / len(sessions) < 8


def test_real_movielens_file_replays_completely():
    events = list(movielens_events(DATA / "movielens-100k" / "u.data"))
    assert len(events) == 100_000
    assert len({e["user_id"] for e in events}) == 943
    valid(events[:1000])
