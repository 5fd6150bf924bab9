"""What every history source shares: retry with back-off, page frames, the complete-candle cut.

Kept apart from the venue modules so the ccxt and Alpaca sources retry, order and trim pages
exactly the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from tradetower.errors import (
    ConnectorError,
    DataValidationError,
    SchemaMismatchError,
    TradeTowerError,
)
from tradetower.history.source import PAGE_COLUMNS, TIMEFRAMES_MS

T = TypeVar("T")

Sleep = Callable[[float], None]
Translate = Callable[[Exception], TradeTowerError | None]
"""Maps a venue SDK's exception to ours; ``None`` means "not a venue error", re-raise as is."""


def wall_clock_ms() -> int:
    """Now, in integer milliseconds since the epoch (UTC)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off: ``base_s · 2ⁿ`` before retry n (0-based), capped at ``cap_s``.

    No jitter, so a run is reproducible and tests can assert the exact waits. A venue's
    ``Retry-After`` wins when it asks for longer.
    """

    max_retries: int = 5
    base_s: float = 1.0
    cap_s: float = 60.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        wait = min(self.cap_s, self.base_s * 2.0**retry)
        return max(wait, retry_after) if retry_after is not None else wait


def with_retries(call: Callable[[], T], translate: Translate, backoff: Backoff, sleep: Sleep) -> T:
    """``call()``, retrying the errors our tree marks ``retryable`` (429, 5xx, network).

    Gives up after ``backoff.max_retries`` retries and raises the last error, translated.
    """
    retry = 0
    while True:
        try:
            return call()
        except Exception as exc:
            error = translate(exc)
            if error is None:
                raise
            if not (isinstance(error, ConnectorError) and error.retryable):
                raise error from exc
            if retry >= backoff.max_retries:
                error.message = f"{error.message} (gave up after {retry} retries)"
                raise error from exc
            sleep(backoff.delay(retry, getattr(error, "retry_after", None)))
            retry += 1


def timeframe_ms(venue: str, timeframe: str, offered: Iterable[str] | None = None) -> int:
    """The timeframe's length; a clear error when the platform or the venue lacks it."""
    allowed = [tf for tf in TIMEFRAMES_MS if offered is None or tf in set(offered)]
    if timeframe not in allowed:
        raise DataValidationError(
            f"{venue}: timeframe {timeframe!r} is not offered; choose one of {', '.join(allowed)}"
        )
    return TIMEFRAMES_MS[timeframe]


def check_range(venue: str, start_ms: int, end_ms: int) -> None:
    if start_ms > end_ms:
        raise DataValidationError(f"{venue}: start {start_ms} is after end {end_ms}")


def complete_stop(end_ms: int, tf_ms: int, now_ms: int) -> int:
    """Exclusive bound on open times worth asking for: before ``end_ms``, and only candles
    that have closed by ``now_ms`` (open + timeframe <= now)."""
    return min(end_ms, now_ms - tf_ms + 1)


def page_frame(
    rows: Sequence[Sequence[float | int | None]], lo_ms: int, hi_ms: int
) -> pd.DataFrame:
    """Rows ``[ts, open, high, low, close, volume]`` as a page: typed, ascending, unique by
    ``ts`` (the first of duplicates kept), holding only ``lo_ms <= ts < hi_ms``."""
    width = len(PAGE_COLUMNS)
    array = np.asarray(rows, dtype=np.float64) if rows else np.empty((0, width))
    if array.ndim != 2 or array.shape[1] != width:
        raise SchemaMismatchError(f"expected rows of {width} values, got shape {array.shape}")
    ts = array[:, 0].astype(np.int64)
    inside = (ts >= lo_ms) & (ts < hi_ms)
    array, ts = array[inside], ts[inside]
    order = np.argsort(ts, kind="stable")
    array, ts = array[order], ts[order]
    first = np.ones(len(ts), dtype=bool)
    first[1:] = ts[1:] != ts[:-1]
    columns = {name: array[first, i] for i, name in enumerate(PAGE_COLUMNS) if i > 0}
    return pd.DataFrame({"ts": ts[first], **columns})


def covering(page: pd.DataFrame, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Label the page with the stretch ``[start_ms, end_ms)`` it answers for, in ``attrs``:
    an empty page then tells the cache exactly where the venue had nothing."""
    page.attrs.update(start_ms=start_ms, end_ms=end_ms)
    return page
