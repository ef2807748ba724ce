"""Events files a row group at a time: reading them, writing a file with the bytes ``io.write_parquet`` would
write, and the counts and codes indexed by id that the data stages keep meanwhile instead of holding 200M
listens (clean, split, popular, eda).

Ids are non-negative integers (the clean stage validates them), so a count per id is a growing ``bincount``
and an id's code a lookup in a table indexed by id: O(n) per chunk, no sort.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .arrays import MAX_TABLE_SPAN, find_sorted, id_table, lookup
from .io import atomic_path

ROW_GROUP_ROWS = 1 << 20  # pq.write_table's default row group length, which a streamed file repeats
PARQUET_OPTIONS = {"compression": "zstd"}  # io.write_parquet's (tests/test_streaming.py compares the bytes)
MAX_TABLE_IDS = MAX_TABLE_SPAN  # an id table up to 512 MiB (int32); sparser ids fall back to a binary search


def row_groups(path: Path | str, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The file one row group at a time: a big file is never held whole (about 1M rows each)."""
    file = pq.ParquetFile(path)
    for index in range(file.num_row_groups):
        yield file.read_row_group(index, columns=columns)


def pandas_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the pandas metadata ``write_parquet`` stores for a DataFrame of these columns (no index)."""
    return pa.Schema.from_pandas(schema.empty_table().to_pandas(), preserve_index=False)


@contextlib.contextmanager
def parquet_stream(target: Path | str, schema: pa.Schema) -> Iterator[Callable[[pa.Table], None]]:
    """Yield ``write(table)``: tables written one after another make the file ``write_parquet`` makes of their
    concatenation, byte for byte, while only a couple of row groups are held. The file appears only on
    success, and a failure leaves no folder it created either (a stage that fails writes nothing).

    Rows are re-cut into row groups of ``ROW_GROUP_ROWS``, each one contiguous array per column as a slice of
    one big table would be: the pages, and so the bytes, follow the arrays the writer is handed. Each row group
    is encoded on a background thread (Arrow releases the GIL) while the caller reads and computes the next.
    """
    target = Path(target)
    created = [folder for folder in (target.parent, *target.parent.parents) if not folder.exists()]
    pending: list[pa.Table] = []
    counts = {"held": 0, "written": 0}
    in_flight: list[Future] = []
    try:
        with (atomic_path(target) as tmp, pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS) as writer,
              ThreadPoolExecutor(max_workers=1) as encoder):
            def flush(rows: int) -> None:
                table = pa.concat_tables(pending)
                group = table.slice(0, rows).combine_chunks()
                pending[:] = [table.slice(rows)]
                counts["held"] -= rows
                counts["written"] += rows
                while in_flight:  # one row group encoding at a time, in order; its error surfaces here
                    in_flight.pop().result()
                in_flight.append(encoder.submit(writer.write_table, group, row_group_size=ROW_GROUP_ROWS))

            def write(table: pa.Table) -> None:
                pending.append(table.cast(schema))
                counts["held"] += table.num_rows
                while counts["held"] >= ROW_GROUP_ROWS:
                    flush(ROW_GROUP_ROWS)

            yield write
            if counts["held"] or not counts["written"]:  # an empty file still gets its one empty row group
                flush(counts["held"]) if pending else writer.write_table(schema.empty_table())
            while in_flight:
                in_flight.pop().result()
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


class Tally:
    """Occurrences of every id seen so far (``counts[id]``, int64), added chunk by chunk."""

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, ids: np.ndarray) -> None:
        """Count ``ids`` (non-negative ints)."""
        if len(ids) == 0:
            return
        found = np.bincount(ids, minlength=len(self.counts))
        found[:len(self.counts)] += self.counts
        self.counts = found

    def of(self, ids: np.ndarray) -> np.ndarray:
        """The count of each of ``ids`` (0 for an id never added)."""
        return lookup(self.counts, ids, 0)

    def present(self) -> np.ndarray:
        """Ids counted at least once, ascending."""
        return np.flatnonzero(self.counts)


class Presence:
    """Which ids were seen so far: a growing bitmap, one byte an id up to the largest (100 MB for 10^8)."""

    def __init__(self) -> None:
        self.seen = np.zeros(0, dtype=bool)

    def add(self, ids: np.ndarray) -> None:
        """Mark ``ids`` (non-negative ints) as seen."""
        if len(ids) == 0:
            return
        top = int(ids.max())
        if top >= len(self.seen):
            self.seen = np.concatenate([self.seen, np.zeros(max(top + 1, 2 * len(self.seen)) - len(self.seen), bool)])
        self.seen[ids] = True

    def contains(self, ids: np.ndarray) -> np.ndarray:
        return lookup(self.seen, ids, False)

    def count(self) -> int:
        return int(np.count_nonzero(self.seen))


class IdCodes:
    """Position of each id in the sorted unique ``ids`` (-1 for other ids), as an int32 table indexed by id:
    a lookup per row where ``arrays.encode`` would build its table again for every chunk, or binary-search
    ids too sparse for its table (real track ids reach 10^8)."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.asarray(ids)
        top = int(self.ids[-1]) if len(self.ids) else -1
        self.table = None
        if len(self.ids) == 0 or (self.ids[0] >= 0 and top < MAX_TABLE_IDS):
            self.table = id_table(self.ids)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if self.table is None:
            return find_sorted(self.ids, values).astype(np.int32)
        return lookup(self.table, values, -1)
