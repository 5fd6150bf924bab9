"""When a market trades: crypto always, US equities by the NYSE calendar.

Sessions come from ``pandas_market_calendars`` (holidays, early closes, daylight saving):
regular hours 09:30–16:00 ET, extended hours 04:00–20:00 ET. The cache uses them to tell a
closed market (nights, weekends, holidays: not gaps) from missing data.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from tradetower.history.catalog import Interval, intersect

EQUITY_CALENDAR = "NYSE"
EQUITY_TZ = "America/New_York"


@dataclass(frozen=True, slots=True)
class Session:
    """One trading day: its date (exchange time) and its windows in epoch ms."""

    day: date
    open_ms: int
    close_ms: int
    pre_ms: int
    post_ms: int


def is_equity(asset_class: str) -> bool:
    return asset_class == "equity"


@functools.lru_cache(maxsize=1)
def _calendar() -> object:
    import pandas_market_calendars as mcal  # type: ignore[import-untyped]

    return mcal.get_calendar(EQUITY_CALENDAR)


@functools.lru_cache(maxsize=64)
def _year_sessions(year: int) -> tuple[Session, ...]:
    with warnings.catch_warnings():
        # pandas_market_calendars 5.x still calls pandas APIs that pandas 3 deprecates
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        schedule = _calendar().schedule(  # type: ignore[attr-defined]
            start_date=f"{year}-01-01", end_date=f"{year}-12-31", market_times="all"
        )

    def ms(column: str) -> np.ndarray:
        return np.asarray(pd.DatetimeIndex(schedule[column]).as_unit("ms").asi8, dtype=np.int64)

    pre, open_, close, post = ms("pre"), ms("market_open"), ms("market_close"), ms("post")
    days = [ts.date() for ts in pd.DatetimeIndex(schedule.index)]
    return tuple(
        Session(d, int(o), int(c), int(p), int(q))
        for d, p, o, c, q in zip(days, pre, open_, close, post, strict=True)
    )


def equity_sessions(start_ms: int, end_ms: int) -> list[Session]:
    """NYSE sessions whose regular hours overlap ``[start_ms, end_ms)``."""
    if end_ms <= start_ms:
        return []
    first = pd.Timestamp(start_ms, unit="ms", tz="UTC").year
    last = pd.Timestamp(end_ms - 1, unit="ms", tz="UTC").year
    return [
        s
        for year in range(first, last + 1)
        for s in _year_sessions(year)
        if s.open_ms < end_ms and s.close_ms > start_ms
    ]


def open_intervals(
    asset_class: str, start_ms: int, end_ms: int, *, extended: bool = True
) -> list[Interval]:
    """When the market trades within ``[start_ms, end_ms)``: the whole span for crypto; for
    equities the sessions (04:00–20:00 ET with ``extended``, else 09:30–16:00 ET)."""
    if not is_equity(asset_class):
        return [(start_ms, end_ms)] if end_ms > start_ms else []
    lo, hi = start_ms - 86_400_000, end_ms + 86_400_000
    windows = [
        (s.pre_ms, s.post_ms) if extended else (s.open_ms, s.close_ms)
        for s in equity_sessions(lo, hi)
    ]
    return intersect(windows, [(start_ms, end_ms)])


def session_day(ts_ms: np.ndarray) -> np.ndarray:
    """The exchange-time date (as ``datetime64[D]``) of each equity bar: a daily bar stamped at
    midnight ET and every intraday bar of a session map to the session's date."""
    local = pd.DatetimeIndex(pd.to_datetime(ts_ms, unit="ms", utc=True)).tz_convert(EQUITY_TZ)
    return np.asarray(local.tz_localize(None).normalize().to_numpy().astype("datetime64[D]"))
