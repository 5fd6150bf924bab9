"""One fetch window: pages from a source, validated, written period by period.

The catalog is updated after each period file is written, so an interrupted fetch resumes from
the last complete period. A stretch with no bars is a known empty range (never asked again) when
it lasts at least a day, or when the whole window had no bar at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from tradetower.history.catalog import CatalogEntry, Interval, fmt_intervals, merge
from tradetower.history.gaps import holes
from tradetower.history.layout import SeriesKey, period_bounds, periods_of, timeframe_ms
from tradetower.history.series import merge_stats, update_catalog, write_rows
from tradetower.history.store import ObjectStore
from tradetower.history.validate import check_follows, empty_frame, validate_page

if TYPE_CHECKING:
    from tradetower.history.source import HistorySource

EMPTY_MIN_MS = 86_400_000
"""A stretch without bars at least this long is recorded as a known empty range."""
FLUSH_ROWS = 200_000
"""Write to the files at least every this many bars, even inside one period."""


@dataclass
class FetchReport:
    key: SeriesKey
    planned: list[Interval]
    bars: int = 0
    calls: int = 0
    empty: list[Interval] = field(default_factory=list)

    def describe(self) -> str:
        head = f"{self.key.exchange} {self.key.symbol} {self.key.timeframe}"
        if not self.planned:
            return f"{head}: nothing to fetch, the cache already holds the whole range"
        text = (
            f"{head}: fetched {self.bars:,} bars in {self.calls} request(s) for "
            f"{fmt_intervals(self.planned)}"
        )
        if self.empty:
            text += f"; venue had no bars for {fmt_intervals(self.empty)} (recorded, not re-asked)"
        return text


class ProgressBar(Protocol):
    """The part of tqdm the fetch uses."""

    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(key: SeriesKey, total: int, enabled: bool) -> ProgressBar:
    """A tqdm bar counting bars received against the bars the range could hold."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm  # type: ignore[import-untyped]

    desc = f"{key.exchange} {key.symbol} {key.timeframe}"
    bar: ProgressBar = tqdm(total=max(total, 0), unit=" bars", unit_scale=True, desc=desc)
    return bar


class Stretches:
    """Turns the progress of one fetch window into catalog updates.

    Everything before ``cursor`` is recorded. Each recorded stretch ends at a bar, right after
    one, or at the window's end, so a run without bars never straddles two stretches. A run
    of at least :data:`EMPTY_MIN_MS` becomes a known empty range, as does a window with no
    bar at all; shorter runs stay inside the held range (and are never asked for again).
    """

    def __init__(self, start: int, end: int, step: int) -> None:
        self.start, self.end, self.step = start, end, step
        self.cursor = start

    def advance(self, upto: int, ts: np.ndarray) -> tuple[Interval, list[Interval]]:
        """Record ``[cursor, upto)`` holding bars ``ts``; return it and its empty runs."""
        stretch = (self.cursor, upto)
        empties = [
            (a, b)
            for a, b in (holes(ts, stretch, self.step) if upto > self.cursor else [])
            if b - a >= EMPTY_MIN_MS or (a, b) == (self.start, self.end)
        ]
        self.cursor = upto
        return stretch, empties


def record(
    store: ObjectStore, key: SeriesKey, rows: pd.DataFrame, stretches: Stretches, upto: int
) -> list[Interval]:
    """Write ``rows`` (all before ``upto``), then record ``[cursor, upto)`` in the catalog;
    return the stretches recorded as empty."""
    stats = write_rows(store, key, rows)
    stretch, empties = stretches.advance(upto, rows["ts"].to_numpy(dtype=np.int64))

    def change(entry: CatalogEntry) -> None:
        entry.record_held(stretch)
        for gap in empties:
            entry.record_empty(gap)
        merge_stats(entry, stats)

    update_catalog(store, key, change)
    return empties


def fetch_window(
    store: ObjectStore,
    source: HistorySource,
    key: SeriesKey,
    window: Interval,
    report: FetchReport,
    bar: ProgressBar,
) -> None:
    """Fetch ``window`` of ``key`` from ``source`` into ``store``."""
    start_ms, end_ms = window
    step = timeframe_ms(key.timeframe)
    where = f"{key.exchange} {key.symbol} {key.timeframe}"
    stretches = Stretches(start_ms, end_ms, step)
    buffer: list[pd.DataFrame] = []
    last_ts: int | None = None
    report.calls += 1
    for page in source.fetch(key.symbol, key.timeframe, start_ms, end_ms):
        clean = validate_page(
            page,
            venue=key.exchange,
            symbol=key.symbol,
            timeframe=key.timeframe,
            start_ms=start_ms,
            end_ms=end_ms,
        )
        if len(clean) == 0:
            continue
        check_follows(clean, last_ts, where=where)
        last_ts = int(clean["ts"].to_numpy(dtype=np.int64)[-1])
        buffer.append(clean)
        report.bars += len(clean)
        bar.update(len(clean))
        upto = flush_point(buffer, key.timeframe, step)
        if upto is not None:
            rows = pd.concat(buffer, ignore_index=True)
            cut = int(np.searchsorted(rows["ts"].to_numpy(dtype=np.int64), upto))
            empties = record(store, key, rows.iloc[:cut], stretches, upto)
            report.empty = merge([*report.empty, *empties])
            buffer = [rows.iloc[cut:].reset_index(drop=True)] if cut < len(rows) else []
    if buffer or stretches.cursor < end_ms:
        rows = pd.concat(buffer, ignore_index=True) if buffer else empty_frame()
        empties = record(store, key, rows, stretches, end_ms)
        report.empty = merge([*report.empty, *empties])


def flush_point(buffer: list[pd.DataFrame], timeframe: str, step: int) -> int | None:
    """Where to cut the buffer: at the first bar of its newest period once an older period is
    complete (pages ascend, so nothing earlier can follow), or after the last bar once the
    buffer is large."""
    newest = int(buffer[-1]["ts"].to_numpy(dtype=np.int64)[-1])
    newest_start, _ = period_bounds(str(periods_of(np.array([newest]), timeframe)[0]), timeframe)
    if int(buffer[0]["ts"].to_numpy(dtype=np.int64)[0]) < newest_start:
        for part in buffer:
            ts = part["ts"].to_numpy(dtype=np.int64)
            if ts[-1] >= newest_start:
                return int(ts[np.searchsorted(ts, newest_start)])
    if sum(len(b) for b in buffer) >= FLUSH_ROWS:
        return newest + step
    return None
