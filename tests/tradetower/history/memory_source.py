"""An in-memory history source for the cache's tests: it serves a fixed frame of bars in pages,
records every ``fetch`` call, can leave stretches empty and can fail after N pages."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from tradetower.errors import ExchangeUnavailableError
from tradetower.history.source import PAGE_COLUMNS, TIMEFRAMES_MS, ProgressCallback

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MINUTE = 60_000
DAY = 86_400_000


def synthetic_bars(
    start_ms: int, end_ms: int, step_ms: int = MINUTE, seed: int = 7, skip: tuple = ()
) -> pd.DataFrame:
    """Valid bars every ``step_ms`` over ``[start_ms, end_ms)``, none inside the ``skip``
    intervals (each ``(a, b)``), with distinct prices so mixing two bars would show."""
    ts = np.arange(start_ms, end_ms, step_ms, dtype=np.int64)
    for a, b in skip:
        ts = ts[(ts < a) | (ts >= b)]
    rng = np.random.default_rng(seed)
    close = 100.0 + np.cumsum(rng.normal(0, 0.1, ts.size))
    open_ = np.r_[100.0, close[:-1]]
    wick = rng.uniform(0.01, 0.2, ts.size)
    return pd.DataFrame(
        {
            "ts": ts,
            "open": open_,
            "high": np.maximum(open_, close) + wick,
            "low": np.minimum(open_, close) - wick,
            "close": close,
            "volume": rng.uniform(1, 5, ts.size).round(3),
        }
    )


class MemorySource:
    """Serves ``bars`` (``PAGE_COLUMNS``) for one timeframe; pages span ``page_bars`` bar
    lengths of time, so a stretch without bars yields empty pages, as a venue would."""

    def __init__(
        self,
        bars: pd.DataFrame,
        *,
        venue: str = "memex",
        timeframe: str = "1m",
        asset: str = "crypto",
        page_bars: int = 1000,
    ) -> None:
        self.venue = venue
        self.bars = bars.reset_index(drop=True)
        self.timeframe = timeframe
        self.asset = asset
        self.page_bars = page_bars
        self.calls: list[tuple[str, str, int, int]] = []
        self.pages_served = 0
        self.fail_after_pages: int | None = None
        self.bad_rows: dict[int, dict[str, float]] = {}
        """Row overrides by ts, to serve invalid bars."""

    def asset_class(self, symbol: str) -> str:
        return self.asset

    def normalize_symbol(self, symbol: str) -> str:
        return symbol.replace("/", "-").upper()

    def fetch(
        self,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
        *,
        progress: ProgressCallback | None = None,
    ) -> Iterator[pd.DataFrame]:
        assert timeframe == self.timeframe, f"asked {timeframe}, serving {self.timeframe}"
        self.calls.append((symbol, timeframe, start_ms, end_ms))
        span = self.page_bars * TIMEFRAMES_MS[timeframe]
        ts = self.bars["ts"].to_numpy()
        for a in range(start_ms, end_ms, span):
            b = min(a + span, end_ms)
            if self.fail_after_pages is not None and self.pages_served >= self.fail_after_pages:
                self.fail_after_pages = None  # fail once, like a dropped connection
                raise ExchangeUnavailableError("connection reset", broker=self.venue)
            page = self.bars.loc[(ts >= a) & (ts < b), list(PAGE_COLUMNS)].reset_index(drop=True)
            for row_ts, values in self.bad_rows.items():
                hit = page["ts"] == row_ts
                for col, value in values.items():
                    page.loc[hit, col] = value
            self.pages_served += 1
            if progress is not None:
                progress(len(page))
            yield page


def source_factory(source: MemorySource):  # type: ignore[no-untyped-def]
    """A ``source_factory`` for HistoryCache that always hands out ``source``."""
    return lambda venue: source
