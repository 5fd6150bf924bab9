"""Where a series lives in the cache (PLATFORM.md §4).

``{exchange}/{assetClass}/{symbol}/{timeframe}/{period}.parquet`` with ``/`` in symbols written
as ``-``; the period is ``YYYY-MM`` up to 15m, ``YYYY`` for 1h and 4h, ``all`` for 1d. The
series' catalog document sits beside its files as ``_catalog.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from tradetower.errors import DataValidationError
from tradetower.history.source import TIMEFRAMES_MS

CATALOG_NAME = "_catalog.json"
MONTHLY = ("1m", "5m", "15m")
YEARLY = ("1h", "4h")
ASSET_CLASSES = ("crypto", "equity")


def timeframe_ms(timeframe: str) -> int:
    """The timeframe's length in milliseconds; an unknown timeframe is refused."""
    try:
        return TIMEFRAMES_MS[timeframe]
    except KeyError:
        known = ", ".join(TIMEFRAMES_MS)
        raise DataValidationError(f"unknown timeframe {timeframe!r} (use one of {known})") from None


def safe_symbol(symbol: str) -> str:
    """The symbol as a path segment: ``BTC/USD`` → ``BTC-USD``."""
    cleaned = symbol.strip().replace("/", "-")
    if not cleaned or cleaned in (".", "..") or "\\" in cleaned:
        raise DataValidationError(f"symbol {symbol!r} cannot name a cache folder")
    return cleaned


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """One series of bars: a venue's symbol at one timeframe."""

    exchange: str
    asset_class: str
    symbol: str
    timeframe: str

    @property
    def id(self) -> str:
        """The catalog id ``{exchange}:{assetClass}:{symbol}:{timeframe}``."""
        return f"{self.exchange}:{self.asset_class}:{self.symbol}:{self.timeframe}"

    @property
    def folder(self) -> str:
        return f"{self.exchange}/{self.asset_class}/{safe_symbol(self.symbol)}/{self.timeframe}"

    @property
    def catalog_path(self) -> str:
        return f"{self.folder}/{CATALOG_NAME}"

    def file_path(self, period: str) -> str:
        return f"{self.folder}/{period}.parquet"

    def with_timeframe(self, timeframe: str) -> SeriesKey:
        return SeriesKey(self.exchange, self.asset_class, self.symbol, timeframe)


def period_of(ts_ms: int, timeframe: str) -> str:
    """The file period holding the bar that opens at ``ts_ms``."""
    when = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    if timeframe in MONTHLY:
        return f"{when.year:04d}-{when.month:02d}"
    if timeframe in YEARLY:
        return f"{when.year:04d}"
    timeframe_ms(timeframe)
    return "all"


def periods_of(ts_ms: np.ndarray, timeframe: str) -> np.ndarray:
    """:func:`period_of` for a sorted array, vectorised (labels as a string array)."""
    if timeframe not in MONTHLY and timeframe not in YEARLY:
        timeframe_ms(timeframe)
        return np.full(ts_ms.shape, "all", dtype=object)
    moments = ts_ms.astype("datetime64[ms]")
    unit = "M" if timeframe in MONTHLY else "Y"
    labels: np.ndarray = np.datetime_as_string(
        moments.astype(f"datetime64[{unit}]"),  # type: ignore[call-overload]
        unit=unit,
    )
    return labels


def period_bounds(period: str, timeframe: str) -> tuple[int, int]:
    """``[start_ms, end_ms)`` of a file period (``all`` spans every representable time)."""
    if period == "all":
        return (-(2**62), 2**62)
    if timeframe in MONTHLY:
        start = pd.Timestamp(f"{period}-01", tz="UTC")
        end = start + pd.DateOffset(months=1)
    else:
        start = pd.Timestamp(f"{period}-01-01", tz="UTC")
        end = start + pd.DateOffset(years=1)
    return int(start.value // 1_000_000), int(pd.Timestamp(end).value // 1_000_000)


def periods_between(start_ms: int, end_ms: int, timeframe: str) -> list[str]:
    """Every file period that ``[start_ms, end_ms)`` touches, in order."""
    if end_ms <= start_ms:
        return []
    if timeframe not in MONTHLY and timeframe not in YEARLY:
        timeframe_ms(timeframe)
        return ["all"]
    first = period_of(start_ms, timeframe)
    last = period_of(end_ms - 1, timeframe)
    freq = "MS" if timeframe in MONTHLY else "YS"
    fmt = "%Y-%m" if timeframe in MONTHLY else "%Y"
    begin = pd.Timestamp(period_bounds(first, timeframe)[0], unit="ms", tz="UTC")
    finish = pd.Timestamp(period_bounds(last, timeframe)[0], unit="ms", tz="UTC")
    return [t.strftime(fmt) for t in pd.date_range(begin, finish, freq=freq)]
