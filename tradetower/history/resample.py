"""Coarser bars from finer ones: first open, highest high, lowest low, last close, summed volume.

Buckets are UTC and aligned to the epoch (a 4h bar opens at 00:00, 04:00... UTC), except equity
dailies, which are session bars: one per exchange date, stamped at midnight New York time, as
the venues stamp them. Buckets with no bars produce no bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradetower.errors import DataValidationError
from tradetower.history.calendars import EQUITY_TZ, is_equity, session_day
from tradetower.history.layout import timeframe_ms
from tradetower.history.source import TIMEFRAMES_MS


def finer_timeframes(timeframe: str) -> list[str]:
    """Timeframes that can build ``timeframe``, finest first."""
    step = timeframe_ms(timeframe)
    return [tf for tf, ms in sorted(TIMEFRAMES_MS.items(), key=lambda kv: kv[1]) if ms < step]


def bucket_starts(ts_ms: np.ndarray, timeframe: str, asset_class: str = "crypto") -> np.ndarray:
    """The opening time (ms) of the bucket each bar falls in."""
    step = timeframe_ms(timeframe)
    if timeframe == "1d" and is_equity(asset_class):
        days = pd.DatetimeIndex(session_day(ts_ms).astype("datetime64[ms]"))
        local = days.tz_localize(EQUITY_TZ)
        return np.asarray(local.tz_convert("UTC").as_unit("ms").asi8, dtype=np.int64)
    starts: np.ndarray = ts_ms - np.mod(ts_ms, step)
    return starts


def resample(frame: pd.DataFrame, timeframe: str, asset_class: str = "crypto") -> pd.DataFrame:
    """Bars of ``frame`` (``ts`` column in ms, sorted, OHLCV, optional ``trades``/``vwap``)
    aggregated to ``timeframe``, same columns."""
    if "ts" not in frame.columns:
        raise DataValidationError("resample needs a 'ts' column of epoch milliseconds")
    ts = frame["ts"].to_numpy(dtype=np.int64)
    if ts.size == 0:
        return frame.iloc[0:0].copy()
    buckets = bucket_starts(ts, timeframe, asset_class)
    first = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    last = np.r_[first[1:] - 1, ts.size - 1]
    volume = frame["volume"].to_numpy(dtype=np.float64)
    out = pd.DataFrame(
        {
            "ts": buckets[first],
            "open": frame["open"].to_numpy(dtype=np.float64)[first],
            "high": np.maximum.reduceat(frame["high"].to_numpy(dtype=np.float64), first),
            "low": np.minimum.reduceat(frame["low"].to_numpy(dtype=np.float64), first),
            "close": frame["close"].to_numpy(dtype=np.float64)[last],
            "volume": np.add.reduceat(volume, first),
        }
    )
    if "trades" in frame.columns:
        out["trades"] = np.add.reduceat(frame["trades"].to_numpy(dtype=np.float64), first)
    if "vwap" in frame.columns:
        turnover = np.add.reduceat(frame["vwap"].to_numpy(dtype=np.float64) * volume, first)
        vol = out["volume"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            # a bucket without volume has no traded price: its close stands in
            out["vwap"] = np.where(vol > 0, turnover / vol, out["close"].to_numpy())
    return out
