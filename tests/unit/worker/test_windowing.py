"""Window sink core: windows from envelopes, once per offset, full or old; Parquet round trip; atomic writes."""

from __future__ import annotations

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from streams.contract.records import ValidBatch, ValidEvent
from streams.contract.windows import WINDOW_SCHEMA, WindowStore, read_window, window_path
from streams.worker.windowing import Window, WindowBuffer, announcement, window_table

T0 = 1_700_000_000.0


def event(offset, user="u1", kind="click", value=None, session=None, partition=0):
    return ValidEvent(
        f"e{offset}", user, f"i{offset % 3}", kind, T0 + offset, value, session, partition, offset, T0 + 50 + offset
    )


def batch(offsets, partition=0, **kw):
    return ValidBatch("events", partition, [event(o, partition=partition, **kw) for o in offsets])


def test_window_path_is_fixed_by_topic_partition_and_offsets_and_sorts_by_offset():
    assert window_path("events", 3, 0, 99) == "events/p3/00000000000000000000-00000000000000000099.parquet"
    names = [window_path("events", 0, a, b) for a, b in [(1000, 1999), (0, 999), (2000, 2000)]]
    assert sorted(names) == [names[1], names[0], names[2]]


def test_a_window_closes_when_full_and_keeps_its_envelopes_tokens():
    buffer = WindowBuffer(max_events=3, max_seconds=60)
    buffer.update(batch([1, 2]), now=0, token="a")
    assert buffer.due(now=1) == []
    buffer.update(batch([3]), now=1, token="b")
    [window] = buffer.due(now=1)
    assert [r["offset"] for r in window.rows] == [1, 2, 3] and window.tokens == ["a", "b"]
    assert (window.first_offset, window.last_offset) == (1, 3)
    assert buffer.marks == {("events", 0): 3}


def test_a_window_never_holds_more_than_max_events_and_an_envelope_is_acked_with_its_last_window():
    buffer = WindowBuffer(max_events=3, max_seconds=60)
    buffer.update(batch([1, 2]), now=0, token="a")
    buffer.update(batch([3, 4, 5, 6, 7, 8, 9]), now=1, token="b")  # a big envelope: three windows
    windows = buffer.due(now=1)
    assert [[r["offset"] for r in w.rows] for w in windows] == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    # "b" is acknowledged only once its last events are written, after the windows before them
    assert [w.tokens for w in windows] == [["a"], [], ["b"]]
    assert buffer.marks == {("events", 0): 9}


def test_a_sealed_window_is_not_filled_again_when_its_envelope_comes_back():
    buffer = WindowBuffer(max_events=2, max_seconds=60)
    buffer.update(batch([1, 2, 3]), now=0, token="a")  # [1, 2] sealed, [3] open
    assert buffer.update(batch([1, 2, 3]), now=0, token="a again") == 0
    assert [[r["offset"] for r in w.rows] for w in buffer.due(now=0, flush=True)] == [[1, 2], [3]]


def test_the_events_of_one_source_offset_stay_in_one_window():
    buffer = WindowBuffer(max_events=2, max_seconds=60)
    buffer.update(batch([1, 2, 2, 2, 3]), now=0)  # the three at offset 2: one envelope of a producer
    assert [[r["offset"] for r in w.rows] for w in buffer.due(now=0, flush=True)] == [[1, 2, 2, 2], [3]]


def test_a_window_closes_when_its_first_envelope_waited_long_enough_per_partition():
    buffer = WindowBuffer(max_events=100, max_seconds=30)
    buffer.update(batch([1], partition=0), now=0)
    buffer.update(batch([5], partition=1), now=20)
    assert [w.partition for w in buffer.due(now=31)] == [0]
    assert [w.partition for w in buffer.due(now=51)] == [1]


def test_events_sent_again_are_not_windowed_twice():
    buffer = WindowBuffer(max_events=100, max_seconds=30, marks={("events", 0): 10})
    assert buffer.update(batch([9, 10, 11]), now=0) == 1  # 9 and 10 are in a written window
    assert buffer.update(batch([11, 12]), now=0) == 1  # 11 is already buffered
    [window] = buffer.due(now=0, flush=True)
    assert [r["offset"] for r in window.rows] == [11, 12]


def test_an_envelope_of_nothing_new_still_comes_out_to_be_acknowledged():
    buffer = WindowBuffer(max_events=100, max_seconds=30, marks={("events", 0): 10})
    buffer.update(batch([3, 4]), now=0, token="t")
    [window] = buffer.due(now=31)
    assert window.events == [] and window.tokens == ["t"] and buffer.marks == {("events", 0): 10}


def test_rows_carry_origin_and_suspicion_and_announcement_spans_them():
    buffer = WindowBuffer(max_events=2, max_seconds=30)
    buffer.update(batch([7, 8], kind="rating", value=4.0, session="s1"), now=0, is_suspect=lambda u: u == "u1")
    [window] = buffer.due(now=0)
    assert window.rows[0] == {
        "event_id": "e7",
        "user_id": "u1",
        "item_id": "i1",
        "type": "rating",
        "ts": T0 + 7,
        "value": 4.0,
        "session_id": "s1",
        "partition": 0,
        "offset": 7,
        "kafka_ts": T0 + 57,
        "suspect": True,
    }
    a = announcement(window, "file:///w/x.parquet", T0 + 100)
    assert (a.rows, a.first_offset, a.last_offset, a.suspect_rows) == (2, 7, 8, 2)
    assert (a.min_ts, a.max_ts, a.min_kafka_ts, a.max_kafka_ts) == (T0 + 7, T0 + 8, T0 + 57, T0 + 58)


def _window(offsets, **kw) -> Window:
    buffer = WindowBuffer(max_events=len(offsets), max_seconds=30)
    buffer.update(batch(offsets, **kw), now=0)
    return buffer.due(now=0)[0]


def test_parquet_round_trip_keeps_schema_nulls_and_values(tmp_path):
    store = WindowStore(f"file://{tmp_path}/windows")
    window = _window([1, 2], kind="purchase", value=9.5)
    uri = store.write(window.path, window_table(window))
    assert uri == f"file://{tmp_path}/windows/{window.path}"
    table = read_window(uri)
    assert table.schema.equals(WINDOW_SCHEMA, check_metadata=False)
    assert table.to_pylist() == window.rows
    assert table.column("session_id").to_pylist() == [None, None]
    assert pq.read_schema(tmp_path / "windows" / window.path).metadata[b"advrec.format"] == b"advrec.window/1"


def test_an_object_store_gets_the_window_whole_under_its_path():
    # pyarrow's in-memory "mock://" filesystem is not a local one: the object-store branch (no temp
    # name, no rename), as for s3:// or gs://. Each from_uri makes a new one, so read through the store's.
    store = WindowStore("mock:///bucket/windows")
    window = _window([3, 4], kind="rating", value=4.0)
    uri = store.write(window.path, window_table(window))
    assert uri == f"mock:///bucket/windows/{window.path}"
    listed = store.fs.get_file_info(pafs.FileSelector("bucket/windows", recursive=True))
    assert [f.path for f in listed if f.type == pafs.FileType.File] == [f"bucket/windows/{window.path}"]
    table = pq.read_table(f"bucket/windows/{window.path}", filesystem=store.fs, schema=WINDOW_SCHEMA)
    assert table.to_pylist() == window.rows


def test_rewriting_a_window_replaces_the_same_file_and_leaves_no_temp_file(tmp_path):
    store = WindowStore(f"file://{tmp_path}")
    window = _window([5])
    store.write(window.path, window_table(window))
    store.write(window.path, window_table(window))  # a crash before the ack: the window is redone
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [window.path]
    assert read_window(store.uri_of(window.path)).num_rows == 1


def test_a_write_that_dies_midway_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    import streams.contract.windows as windows

    store = WindowStore(f"file://{tmp_path}")
    window = _window([5])

    def dies_midway(table, where):
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(windows.pq, "write_table", dies_midway)
    with pytest.raises(OSError):
        store.write(window.path, window_table(window))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no half file, no temp file


def test_empty_table_keeps_the_schema():
    assert window_table(Window("events", 0)).schema.equals(WINDOW_SCHEMA)


def test_events_of_one_envelope_share_an_offset_and_are_windowed_once():
    buffer = WindowBuffer(max_events=100, max_seconds=60)
    assert buffer.update(batch([1, 2, 2, 2]), now=0) == 4
    assert buffer.update(batch([2, 2, 2, 3, 3]), now=0) == 2  # the envelope at 2 sent again, one at 3 new
    [window] = buffer.due(now=0, flush=True)
    assert [r["offset"] for r in window.rows] == [1, 2, 2, 2, 3, 3]
