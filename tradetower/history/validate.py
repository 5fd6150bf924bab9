"""Checks every batch of bars passes before the cache writes it.

A batch (a page from a source, or an imported file) is refused whole, with a
:class:`~tradetower.errors.DataValidationError` that names the venue, the symbol, the timeframe
and the first bad bar's timestamp, so nothing half-checked ever reaches a file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradetower.domain.bars import OHLCV, validate_bars
from tradetower.errors import DataValidationError
from tradetower.history.catalog import fmt_ms
from tradetower.history.source import PAGE_COLUMNS

#: Columns a cache file may carry besides ``ts`` and OHLCV.
OPTIONAL_COLUMNS = ("trades", "vwap")


def validate_page(
    page: pd.DataFrame,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pd.DataFrame:
    """The page as a clean frame: ``ts`` int64 ms, sorted unique, float64 OHLCV.

    Refuses missing columns, NaN or infinite values, unsorted or duplicate timestamps,
    ``high < max(open, close)``, ``low > min(open, close)``, negative volume, and bars outside
    ``[start_ms, end_ms)`` when those are given.
    """
    where = f"{venue} {symbol} {timeframe}"
    if len(page) == 0:
        return empty_frame()
    missing = [c for c in PAGE_COLUMNS if c not in page.columns]
    if missing:
        raise DataValidationError(f"{where}: batch lacks column(s) {', '.join(missing)}")
    ts = pd.to_numeric(page["ts"], errors="coerce").to_numpy(dtype="float64")
    bad = np.flatnonzero(~np.isfinite(ts))
    if bad.size:
        raise DataValidationError(
            f"{where}: row {int(bad[0])}: ts is missing or not a number", row=int(bad[0])
        )
    frame = page.loc[:, list(PAGE_COLUMNS)].rename(columns={"ts": "timestamp"})
    frame["timestamp"] = pd.to_datetime(ts.astype("int64"), unit="ms", utc=True)
    try:
        clean = validate_bars(frame)
    except DataValidationError as exc:
        raise DataValidationError(f"{where}: {exc}", row=exc.row, column=exc.column) from None
    out = pd.DataFrame({"ts": ts.astype("int64")})
    for col in OHLCV:
        out[col] = clean[col].to_numpy()
    for col in OPTIONAL_COLUMNS:
        if col in page.columns:
            values = pd.to_numeric(page[col], errors="coerce").to_numpy(dtype="float64")
            if not np.isfinite(values).all():
                r = int(np.flatnonzero(~np.isfinite(values))[0])
                at = fmt_ms(int(out["ts"].to_numpy()[r]))
                raise DataValidationError(
                    f"{where}: row {r} ({at}): {col} is not a number",
                    row=r,
                    column=col,
                )
            out[col] = values
    _check_window(out["ts"].to_numpy(), where, start_ms, end_ms)
    return out


def _check_window(ts: np.ndarray, where: str, start_ms: int | None, end_ms: int | None) -> None:
    if start_ms is not None and ts[0] < start_ms:
        raise DataValidationError(
            f"{where}: bar at {fmt_ms(int(ts[0]))} is before the requested start {fmt_ms(start_ms)}"
        )
    if end_ms is not None and ts[-1] >= end_ms:
        raise DataValidationError(
            f"{where}: bar at {fmt_ms(int(ts[-1]))} is at or after the requested end "
            f"{fmt_ms(end_ms)}"
        )


def check_follows(page: pd.DataFrame, last_ts: int | None, *, where: str) -> None:
    """A page must start after the previous page's last bar (pages ascend, never overlap)."""
    first = int(page["ts"].to_numpy(dtype=np.int64)[0]) if len(page) else None
    if last_ts is not None and first is not None and first <= last_ts:
        raise DataValidationError(
            f"{where}: bar at {fmt_ms(first)} repeats or precedes the previous "
            f"page (which ended at {fmt_ms(last_ts)})"
        )


def check_spacing(ts: np.ndarray, step_ms: int, *, where: str) -> None:
    """Bars of one timeframe are at least one timeframe apart."""
    if ts.size < 2:
        return
    diffs = np.diff(ts)
    close = np.flatnonzero(diffs < step_ms)
    if close.size:
        r = int(close[0]) + 1
        raise DataValidationError(
            f"{where}: row {r} ({fmt_ms(int(ts[r]))}): only {int(diffs[r - 1]) // 1000} s after "
            f"the previous bar, less than one timeframe; is the timeframe right?",
            row=r,
        )


def empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({"ts": np.empty(0, dtype="int64")})
    for col in OHLCV:
        frame[col] = np.empty(0, dtype="float64")
    return frame
