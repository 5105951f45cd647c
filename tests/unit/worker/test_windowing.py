"""Window sink core: naming, cutting by partition, Parquet schema round trip, idempotent atomic writes."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from streams.contract.windows import WINDOW_SCHEMA, WindowStore, read_window, window_path
from streams.worker.validation import ValidationLimits
from streams.worker.windowing import Window, WindowRecord, announcement, cut_windows, window_table

NOW = 1_700_000_100.0


def _event(n: int, user: str, kind: str = "click", value: float | None = None, session: str | None = None) -> bytes:
    return json.dumps(
        {
            "event_id": f"e{n}",
            "user_id": user,
            "item_id": f"i{n % 3}",
            "type": kind,
            "ts": 1_700_000_000.0 + n,
            "value": value,
            "session_id": session,
        }
    ).encode()


RECORDS = [
    WindowRecord(_event(1, "u1", "rating", 4.0, "s1"), "events", 1, 10, 1_700_000_050.0),
    WindowRecord(_event(2, "u2"), "events", 0, 7, 1_700_000_051.0),
    WindowRecord(b"{not json", "events", 1, 11, 1_700_000_052.0),
    WindowRecord(_event(3, "bad-guy", "purchase", 9.5), "events", 1, 12, 1_700_000_053.0),
    WindowRecord(_event(4, "u2", "rating", 11.0), "events", 0, 8, 1_700_000_054.0),  # out of scale
]


def test_window_path_is_fixed_by_topic_partition_and_offsets_and_sorts_by_offset():
    assert window_path("events", 3, 0, 99) == "events/p3/00000000000000000000-00000000000000000099.parquet"
    names = [window_path("events", 0, a, b) for a, b in [(1000, 1999), (0, 999), (2000, 2000)]]
    assert sorted(names) == [names[1], names[0], names[2]]


def test_cut_windows_groups_by_partition_keeps_valid_rows_and_covers_every_offset():
    windows = cut_windows(RECORDS, ValidationLimits(), NOW, is_suspect=lambda user: user == "bad-guy")
    assert [(w.partition, w.first_offset, w.last_offset) for w in windows] == [(0, 7, 8), (1, 10, 12)]
    p0, p1 = windows
    assert [r["event_id"] for r in p0.rows] == ["e2"]  # e4 is invalid: skipped, its offset still covered
    assert [r["event_id"] for r in p1.rows] == ["e1", "e3"]  # the malformed record at 11 is skipped
    assert [r["suspect"] for r in p1.rows] == [False, True]
    assert p1.rows[0] == {
        "event_id": "e1",
        "user_id": "u1",
        "item_id": "i1",
        "type": "rating",
        "ts": 1_700_000_001.0,
        "value": 4.0,
        "session_id": "s1",
        "partition": 1,
        "offset": 10,
        "kafka_ts": 1_700_000_050.0,
        "suspect": False,
    }
    assert p1.path == "events/p1/00000000000000000010-00000000000000000012.parquet"


def test_announcement_spans_and_counts():
    p1 = cut_windows(RECORDS, ValidationLimits(), NOW, is_suspect=lambda user: user == "bad-guy")[1]
    a = announcement(p1, "file:///w/" + p1.path, written_at=NOW)
    assert (a.rows, a.suspect_rows, a.first_offset, a.last_offset) == (2, 1, 10, 12)
    assert (a.min_ts, a.max_ts) == (1_700_000_001.0, 1_700_000_003.0)
    assert (a.min_kafka_ts, a.max_kafka_ts) == (1_700_000_050.0, 1_700_000_053.0)
    assert a.topic == "events" and a.partition == 1 and a.path == p1.path and a.written_at == NOW


def test_parquet_round_trip_keeps_schema_nulls_and_values(tmp_path):
    store = WindowStore(f"file://{tmp_path}/windows")
    window = cut_windows(RECORDS, ValidationLimits(), NOW)[1]
    uri = store.write(window.path, window_table(window))
    assert uri == f"file://{tmp_path}/windows/{window.path}"
    table = read_window(uri)
    assert table.schema.equals(WINDOW_SCHEMA, check_metadata=False)
    assert table.to_pylist() == window.rows
    assert table.column("value").to_pylist() == [4.0, 9.5]
    assert table.column("session_id").to_pylist() == ["s1", None]
    assert pq.read_schema(tmp_path / "windows" / window.path).metadata[b"advrec.format"] == b"advrec.window/1"


def test_rewriting_a_window_replaces_the_same_file_and_leaves_no_temp_file(tmp_path):
    store = WindowStore(f"file://{tmp_path}")
    window = cut_windows(RECORDS, ValidationLimits(), NOW)[0]
    store.write(window.path, window_table(window))
    store.write(window.path, window_table(window))  # a crash before the ack: the window is redone
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [window.path]
    assert read_window(store.uri_of(window.path)).num_rows == 1


def test_a_write_that_dies_midway_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    import streams.contract.windows as windows

    store = WindowStore(f"file://{tmp_path}")
    window = cut_windows(RECORDS, ValidationLimits(), NOW)[0]

    def dies_midway(table, where):
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(windows.pq, "write_table", dies_midway)
    with pytest.raises(OSError):
        store.write(window.path, window_table(window))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no half file, no temp file


def test_empty_table_keeps_the_schema():
    assert window_table(Window("events", 0, 0, 0)).schema.equals(WINDOW_SCHEMA)
