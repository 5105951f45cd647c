"""The window contract: the Parquet schema of a training batch, its file name, and reading/writing it.

A window file holds the valid events of one source partition over one offset range, named
`{topic}/p{partition}/{first:020d}-{last:020d}.parquet`, so a rewrite after a crash replaces the
same file. `WindowStore.write` is atomic (temporary name, fsync, rename) on local disks and whole-object
on object stores. Shared by the worker (writer) and the trainer (reader); imports nothing of advrec.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = ["WINDOW_SCHEMA", "window_path", "WindowStore", "read_window", "fsync_path"]

WINDOW_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("type", pa.string()),
        ("ts", pa.float64()),
        ("value", pa.float64()),
        ("session_id", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("kafka_ts", pa.float64()),
        ("suspect", pa.bool_()),
    ],
    metadata={"advrec.format": "advrec.window/1"},
)


def window_path(topic: str, partition: int, first_offset: int, last_offset: int) -> str:
    """`topic/p{partition}/{first:020d}-{last:020d}.parquet`: the same range always gives the same name."""
    return f"{topic}/p{partition}/{first_offset:020d}-{last_offset:020d}.parquet"


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file or a directory (a rename or a new entry in a directory then survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WindowStore:
    """Parquet files under a base URI (file://, s3://, …) through pyarrow filesystems."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.fs, self.base = pafs.FileSystem.from_uri(self.uri)

    def uri_of(self, path: str) -> str:
        """Full URI of a relative path."""
        return f"{self.uri}/{path}"

    def write(self, path: str, table: pa.Table) -> str:
        """Write `table` at `path` atomically (temp name, fsync, rename); return its URI."""
        target = f"{self.base}/{path}"
        if isinstance(self.fs, pafs.LocalFileSystem):
            directory = os.path.dirname(target)
            created = not os.path.isdir(directory)
            os.makedirs(directory, exist_ok=True)
            tmp = f"{target}.tmp-{os.getpid()}"
            try:
                with open(tmp, "wb") as fh:
                    pq.write_table(table, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            fsync_path(directory)
            if created:
                fsync_path(os.path.dirname(directory))
        else:
            # Object stores publish an object whole when its upload completes: no rename needed.
            self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with self.fs.open_output_stream(target) as out:
                pq.write_table(table, out)
        return self.uri_of(path)


def read_window(uri: str) -> pa.Table:
    """Read one window file by its full URI."""
    fs, path = pafs.FileSystem.from_uri(uri)
    return pq.read_table(path, filesystem=fs, schema=WINDOW_SCHEMA)
