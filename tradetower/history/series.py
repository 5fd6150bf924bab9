"""One series in a store: its period files and catalog document, read and written safely.

Every write is a read-modify-write made conditional on the ETag that was read (or on the
object being absent): a writer that lost a race re-reads, merges its bars or its catalog change
into the newer version and tries again, so concurrent writers never lose each other's work.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from tradetower.errors import DataValidationError
from tradetower.history import files
from tradetower.history.catalog import CatalogEntry
from tradetower.history.layout import SeriesKey, periods_between, periods_of
from tradetower.history.store import ObjectStore, PreconditionFailedError, StoreError
from tradetower.history.validate import empty_frame

Columns = dict[str, np.ndarray]
"""Bars as arrays by column name: ``ts`` (int64 ms) and float64 values."""
FileStats = dict[str, dict[str, int]]
"""Per period: the file's ``rows`` and ``bytes``."""

WRITE_ATTEMPTS = 8


class ConcurrentWriteError(StoreError):
    """Other writers kept changing a file; this write gave up without losing anything."""

    code = "HISTORY_WRITE_CONFLICT"


def _gave_up(path: str) -> ConcurrentWriteError:
    return ConcurrentWriteError(
        f"{path}: other writers kept changing it ({WRITE_ATTEMPTS} attempts); "
        "nothing was lost, run the command again"
    )


def backoff(attempt: int) -> None:
    """A short, jittered pause before re-reading after a lost race."""
    time.sleep(min(0.5, 0.01 * 2**attempt) * (0.5 + random.random()))


def read_catalog(store: ObjectStore, key: SeriesKey) -> CatalogEntry | None:
    found = store.get(key.catalog_path)
    return None if found is None else CatalogEntry.loads(found.data, key.catalog_path)


def update_catalog(
    store: ObjectStore, key: SeriesKey, change: Callable[[CatalogEntry], None]
) -> CatalogEntry:
    """Read, change and conditionally write the catalog; on a lost race, start over."""
    for attempt in range(WRITE_ATTEMPTS):
        found = store.get(key.catalog_path)
        entry = (
            CatalogEntry(key) if found is None else CatalogEntry.loads(found.data, key.catalog_path)
        )
        change(entry)
        entry.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            store.put(
                key.catalog_path,
                entry.dumps(),
                if_match=None if found is None else found.etag,
                if_none_match=found is None,
            )
            return entry
        except PreconditionFailedError:
            backoff(attempt)
    raise _gave_up(key.catalog_path)


def merge_stats(entry: CatalogEntry, stats: FileStats) -> None:
    """Files only grow (writes merge), so of two writers' figures the larger row count is the
    newer file's: a slower writer's catalog update never shrinks the counts."""
    for period, stat in stats.items():
        if stat["rows"] >= entry.files.get(period, {"rows": -1})["rows"]:
            entry.files[period] = stat


def write_period(
    store: ObjectStore, key: SeriesKey, period: str, rows: pd.DataFrame
) -> tuple[int, int]:
    """Merge ``rows`` into the period's file; return the file's rows and bytes."""
    path = key.file_path(period)
    for attempt in range(WRITE_ATTEMPTS):
        found = store.get(path)
        merged = rows if found is None else files.merge_bars(files.decode(found.data, path), rows)
        data = files.encode(merged)
        try:
            store.put(
                path,
                data,
                if_match=None if found is None else found.etag,
                if_none_match=found is None,
            )
            return len(merged), len(data)
        except PreconditionFailedError:
            backoff(attempt)
    raise _gave_up(path)


def write_rows(store: ObjectStore, key: SeriesKey, rows: pd.DataFrame) -> FileStats:
    """Write ``rows`` (sorted by ``ts``) into their period files; return the files' stats."""
    stats: FileStats = {}
    if len(rows) == 0:
        return stats
    labels = periods_of(rows["ts"].to_numpy(dtype=np.int64), key.timeframe)
    cuts = [*np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]).tolist(), len(rows)]
    for begin, finish in itertools.pairwise(cuts):
        period = str(labels[begin])
        part = rows.iloc[begin:finish].reset_index(drop=True)
        n_rows, n_bytes = write_period(store, key, period, part)
        stats[period] = {"rows": n_rows, "bytes": n_bytes}
    return stats


def read_columns(
    store: ObjectStore, key: SeriesKey, start_ms: int, end_ms: int, entry: CatalogEntry
) -> Columns:
    """Bars of ``key`` in ``[start_ms, end_ms)``: ``ts`` and the value columns as arrays.

    Files are fetched in parallel (I/O: Blob round trips) and decoded by pyarrow, which
    spreads each file over its own threads.
    """
    periods = [p for p in periods_between(start_ms, end_ms, key.timeframe) if p in entry.files]
    if not periods:
        return columns_of(empty_frame())

    def fetch(period: str) -> bytes:
        path = key.file_path(period)
        found = store.get(path)
        if found is None:
            raise DataValidationError(
                f"{key.id}: the catalog lists {path} but the file is missing; fetch the range again"
            )
        return found.data

    if len(periods) == 1:
        blobs = [fetch(periods[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(8, len(periods))) as pool:
            blobs = list(pool.map(fetch, periods))
    tables = [
        files.decode_table(data, key.file_path(period))
        for period, data in zip(periods, blobs, strict=True)
    ]
    names = files.shared_columns(tables, key.folder)
    parts = []
    for table in tables:
        ts = table.column("ts").to_numpy()
        lo, hi = np.searchsorted(ts, [start_ms, end_ms])
        parts.append(table.slice(int(lo), int(hi - lo)).select(names))
    joined = pa.concat_tables(parts)
    return {name: joined.column(name).to_numpy() for name in names}


def series_ts(store: ObjectStore, key: SeriesKey, entry: CatalogEntry) -> np.ndarray:
    """Every bar time the series holds (decodes the ``ts`` column only)."""
    parts = []
    for period in sorted(entry.files):
        path = key.file_path(period)
        found = store.get(path)
        if found is not None:
            table = files.decode_table(found.data, path, columns=["ts"])
            parts.append(table.column("ts").to_numpy())
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def columns_of(frame: pd.DataFrame) -> Columns:
    return {str(c): frame[c].to_numpy() for c in frame.columns}
