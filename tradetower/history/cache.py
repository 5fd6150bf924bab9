"""The history cache: fetch once, keep as Parquet, serve bars to backtests.

Read path (PLATFORM.md §4): request − ranges − emptyRanges = fetch plan → ``source.fetch`` per
missing interval → validate each page → merge into the period files → catalog update. The
catalog is updated after every period file is written, so an interrupted fetch resumes from the
last written period. Files and catalog are written with conditional puts: a writer that lost a
race re-reads, merges and tries again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tradetower.domain.bars import OHLCV, MarketData, read_bars
from tradetower.errors import DataValidationError, TradeTowerError
from tradetower.history.catalog import CatalogEntry, Gap, fmt_intervals, fmt_ms, merge, to_ms
from tradetower.history.fetching import FetchReport, Stretches, fetch_window, progress_bar, record
from tradetower.history.gaps import find_gaps
from tradetower.history.layout import (
    ASSET_CLASSES,
    CATALOG_NAME,
    SeriesKey,
    safe_symbol,
    timeframe_ms,
)
from tradetower.history.resample import finer_timeframes, resample
from tradetower.history.series import (
    Columns,
    columns_of,
    read_catalog,
    read_columns,
    series_ts,
    update_catalog,
)
from tradetower.history.store import ObjectStore
from tradetower.history.validate import check_spacing, empty_frame, validate_page

if TYPE_CHECKING:
    from tradetower.history.source import HistorySource

SourceFactory = Callable[[str], "HistorySource"]


class CacheMissError(TradeTowerError):
    """``offline`` was asked for and the cache lacks part of the request."""

    code = "HISTORY_NOT_CACHED"


@dataclass(frozen=True)
class ImportReport:
    key: SeriesKey
    bars: int
    first_ms: int
    last_ms: int


@dataclass
class SeriesSummary:
    entry: CatalogEntry
    first_ms: int | None
    last_ms: int | None
    gaps: list[Gap]


class HistoryCache:
    """Bars by venue, symbol and timeframe, held in ``store`` (local folder or Blob)."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        source_factory: SourceFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.source_factory = source_factory
        self.clock = clock

    # ------------------------------------------------------------------ catalog documents

    def catalog(self, key: SeriesKey) -> CatalogEntry | None:
        return read_catalog(self.store, key)

    def entries(self) -> list[CatalogEntry]:
        """Every series the cache holds, sorted by id."""
        out = []
        for path in self.store.list(""):
            if path.endswith("/" + CATALOG_NAME):
                found = self.store.get(path)
                if found is not None:
                    out.append(CatalogEntry.loads(found.data, path))
        return sorted(out, key=lambda e: e.key.id)

    def _refresh_quality(self, key: SeriesKey) -> CatalogEntry:
        entry = self.catalog(key) or CatalogEntry(key)
        ts = series_ts(self.store, key, entry)
        gaps = find_gaps(ts, entry.asked, key.asset_class, timeframe_ms(key.timeframe))

        def change(e: CatalogEntry) -> None:
            e.data_quality = gaps
            e.status, e.error = "AVAILABLE", ""

        return update_catalog(self.store, key, change)

    # ------------------------------------------------------------------------------ fetch

    def _now_bound(self, step: int) -> int:
        """End of the last complete bar: never record the future as fetched."""
        now = int(self.clock() * 1000)
        return now - now % step

    def fetch(
        self,
        source: HistorySource,
        symbol: str,
        timeframe: str,
        start: object,
        end: object,
        *,
        progress: bool = True,
    ) -> FetchReport:
        """Fetch what the cache lacks of ``[start, end)`` from ``source`` and store it."""
        step = timeframe_ms(timeframe)
        start_ms, end_ms = _window(start, end, step)
        end_ms = min(end_ms, self._now_bound(step))
        name = source.normalize_symbol(symbol)
        key = SeriesKey(source.venue, source.asset_class(name), name, timeframe)
        entry = self.catalog(key)
        planned = (
            entry.missing(start_ms, end_ms) if entry is not None else merge([(start_ms, end_ms)])
        )
        report = FetchReport(key, planned)
        if not planned:
            return report

        def mark_fetching(e: CatalogEntry) -> None:
            e.status, e.error = "FETCHING", ""

        update_catalog(self.store, key, mark_fetching)
        bar = progress_bar(key, sum(b - a for a, b in planned) // step, progress)
        try:
            for window in planned:
                fetch_window(self.store, source, key, window, report, bar)
        except BaseException as exc:  # Ctrl-C too: `data ls` then says why it stopped
            self._mark_error(key, exc)
            raise
        finally:
            bar.close()
        self._refresh_quality(key)
        return report

    def _mark_error(self, key: SeriesKey, exc: BaseException) -> None:
        def change(e: CatalogEntry) -> None:
            e.status, e.error = "ERROR", f"{type(exc).__name__}: {exc}"[:500]

        # the original error matters more than the status line
        with contextlib.suppress(TradeTowerError):
            update_catalog(self.store, key, change)

    # ----------------------------------------------------------------------------- import

    def import_file(
        self,
        path: str | Path,
        *,
        venue: str,
        symbol: str,
        timeframe: str,
        asset_class: str = "crypto",
    ) -> ImportReport:
        """Validate a CSV or Parquet file of bars and merge it into the cache.

        The stretch from the first bar to
        the end of the last is recorded as fetched, so a later fetch asks only for the rest.
        """
        step = timeframe_ms(timeframe)
        if asset_class not in ASSET_CLASSES:
            raise DataValidationError(
                f"unknown asset class {asset_class!r} (use {' or '.join(ASSET_CLASSES)})"
            )
        key = SeriesKey(venue.strip().lower(), asset_class, safe_symbol(symbol).upper(), timeframe)
        bars = read_bars(path)
        page = pd.DataFrame({"ts": pd.DatetimeIndex(bars.index).as_unit("ms").asi8})
        for col in OHLCV:
            page[col] = bars[col].to_numpy()
        where = f"{path}: {key.exchange} {key.symbol} {timeframe}"
        try:
            clean = validate_page(page, venue=key.exchange, symbol=key.symbol, timeframe=timeframe)
        except DataValidationError as exc:
            raise DataValidationError(f"{path}: {exc}", row=exc.row, column=exc.column) from None
        ts = clean["ts"].to_numpy(dtype=np.int64)
        check_spacing(ts, step, where=where)
        end = int(ts[-1]) + step
        record(self.store, key, clean, Stretches(int(ts[0]), end, step), end)
        self._refresh_quality(key)
        return ImportReport(key, len(clean), int(ts[0]), int(ts[-1]))

    # ------------------------------------------------------------------------------- read

    def find(self, venue: str, symbol: str) -> list[SeriesKey]:
        """The series held for ``venue`` and ``symbol`` (any asset class and timeframe)."""
        venue = venue.strip().lower()
        names = dict.fromkeys([safe_symbol(symbol), safe_symbol(symbol).upper()])
        found = []
        for asset_class in ASSET_CLASSES:
            for name in names:
                prefix = f"{venue}/{asset_class}/{name}/"
                for path in self.store.list(prefix):
                    parts = path[len(prefix) :].split("/")
                    if len(parts) == 2 and parts[1] == CATALOG_NAME:
                        found.append(SeriesKey(venue, asset_class, name, parts[0]))
        return found

    def _held_key(self, venue: str, symbol: str, timeframe: str) -> SeriesKey | None:
        """The key to read ``timeframe`` from (held itself or a finer timeframe)."""
        keys = self.find(venue, symbol)
        if not keys:
            return None
        exact = [k for k in keys if k.timeframe == timeframe]
        return (exact or keys)[0].with_timeframe(timeframe)

    def load(
        self,
        venue: str,
        symbol: str,
        timeframe: str,
        start: object,
        end: object,
        *,
        offline: bool = False,
        source: HistorySource | None = None,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Bars in ``[start, end)`` indexed by UTC time, float64 OHLCV: what
        ``backtest(data=...)`` takes.

        Served from the timeframe itself when held, else resampled from the finest held
        timeframe that covers the range, else fetched from the venue (``offline`` forbids
        that and raises :class:`CacheMissError` naming what is missing).
        """
        columns = self._load_columns(
            venue, symbol, timeframe, start, end, offline, source, progress
        )
        return pd.DataFrame(
            {c: values for c, values in columns.items() if c != "ts"},
            index=_utc_index(columns["ts"]),
        )

    def load_market(
        self,
        venue: str,
        symbol: str,
        timeframe: str,
        start: object,
        end: object,
        *,
        offline: bool = False,
        source: HistorySource | None = None,
        progress: bool = False,
    ) -> MarketData:
        """The same bars as :meth:`load`, as the engine's :class:`MarketData` named ``symbol``
        (no second validation: every bar was checked on its way into the cache)."""
        columns = self._load_columns(
            venue, symbol, timeframe, start, end, offline, source, progress
        )
        ts = columns["ts"]
        if ts.size == 0:
            raise DataValidationError(f"{venue} {symbol} {timeframe}: no bars in that range")
        cube = np.empty((ts.size, 1, len(OHLCV)), order="F")  # MarketData's layout
        for k, col in enumerate(OHLCV):
            cube[:, 0, k] = columns[col]
        return MarketData((symbol,), _utc_index(ts), cube, rising=True)

    def _load_columns(
        self,
        venue: str,
        symbol: str,
        timeframe: str,
        start: object,
        end: object,
        offline: bool,
        source: HistorySource | None,
        progress: bool,
    ) -> Columns:
        step = timeframe_ms(timeframe)
        start_ms, end_ms = _window(start, end, step)
        end_ms = min(end_ms, self._now_bound(step))
        key = self._held_key(venue, symbol, timeframe)
        missing = [(start_ms, end_ms)]
        if key is not None:
            served = self._serve(key, start_ms, end_ms)
            if served is not None:
                return served
            entry = self.catalog(key)
            missing = entry.missing(start_ms, end_ms) if entry else missing
        if offline:
            raise CacheMissError(
                f"offline: the cache lacks {venue} {symbol} {timeframe} for "
                f"{fmt_intervals(missing, limit=5)} (UTC); fetch it first with `tradetower "
                f"data fetch --venue {venue} --symbol {symbol} --timeframe {timeframe} "
                f"--start {fmt_ms(start_ms)} --end {fmt_ms(end_ms)}`"
            )
        if source is None:
            if self.source_factory is None:
                raise CacheMissError(
                    f"the cache lacks {venue} {symbol} {timeframe} for "
                    f"{fmt_intervals(missing)} and no source is configured to fetch it"
                )
            source = self.source_factory(venue)
        report = self.fetch(source, symbol, timeframe, start_ms, end_ms, progress=progress)
        entry = self.catalog(report.key)
        if entry is None:  # pragma: no cover - fetch always writes the catalog
            return columns_of(empty_frame())
        return read_columns(self.store, report.key, start_ms, end_ms, entry)

    def _serve(self, key: SeriesKey, start_ms: int, end_ms: int) -> Columns | None:
        """The bars from the cache alone, or ``None`` when it lacks part of the range."""
        entry = self.catalog(key)
        if entry is not None and not entry.missing(start_ms, end_ms):
            return read_columns(self.store, key, start_ms, end_ms, entry)
        for finer in finer_timeframes(key.timeframe):
            fine_key = key.with_timeframe(finer)
            fine = self.catalog(fine_key)
            if fine is None or fine.missing(start_ms, end_ms):
                continue
            rows = resample(
                pd.DataFrame(read_columns(self.store, fine_key, start_ms, end_ms, fine)),
                key.timeframe,
                key.asset_class,
            )
            ts = rows["ts"].to_numpy(dtype=np.int64)
            return columns_of(rows.loc[(ts >= start_ms) & (ts < end_ms)])
        return None

    def summary(self, venue: str, symbol: str, timeframe: str) -> SeriesSummary:
        """What the cache holds of one series, with fresh data-quality warnings."""
        timeframe_ms(timeframe)
        keys = [k for k in self.find(venue, symbol) if k.timeframe == timeframe]
        if not keys:
            raise CacheMissError(f"the cache holds no {venue} {symbol} {timeframe}")
        key = keys[0]
        entry = self.catalog(key) or CatalogEntry(key)
        ts = series_ts(self.store, key, entry)
        gaps = find_gaps(ts, entry.asked, key.asset_class, timeframe_ms(timeframe))
        first = int(ts[0]) if ts.size else None
        last = int(ts[-1]) if ts.size else None
        return SeriesSummary(entry, first, last, gaps)


def _window(start: object, end: object, step: int) -> tuple[int, int]:
    """``[start, end)`` in ms, widened to whole bars."""
    start_ms, end_ms = to_ms(start, what="start"), to_ms(end, what="end")
    if end_ms <= start_ms:
        raise DataValidationError(
            f"end ({fmt_ms(end_ms)}) must be after start ({fmt_ms(start_ms)})"
        )
    return start_ms - start_ms % step, end_ms + (-end_ms) % step


def _utc_index(ts_ms: np.ndarray) -> pd.DatetimeIndex:
    """A UTC index from epoch ms without parsing (pandas' default microsecond unit)."""
    micros = (ts_ms.astype(np.int64) * 1_000).view("datetime64[us]")
    return pd.DatetimeIndex(micros, name="timestamp").tz_localize("UTC")
