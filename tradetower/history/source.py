"""What a history source (a broker or exchange API) promises the cache.

A source turns (symbol, timeframe, [start, end)) into pages of bars. The cache decides *what*
to fetch (the request minus what it already holds); the source only knows *how* to ask its
venue: pagination, rate limits, retries, symbol and timestamp normalisation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import pandas as pd

#: Timeframes the platform knows, with their length in milliseconds (PLATFORM.md §4).
TIMEFRAMES_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}

#: Columns of every page a source yields, in this order: ``ts`` is the bar's open time in
#: int64 milliseconds since the epoch (UTC); prices and volume are float64.
PAGE_COLUMNS = ("ts", "open", "high", "low", "close", "volume")

ProgressCallback = Callable[[int], None]
"""Called with the number of bars each page added, for progress bars."""


class HistorySource(Protocol):
    """A venue's historical bars.

    ``fetch`` yields pages (DataFrames with :data:`PAGE_COLUMNS`, a default RangeIndex),
    ascending and unique by ``ts``, covering ``start_ms <= ts < end_ms``, holding only
    complete candles (a candle still forming at the time of the call is dropped). A page may
    be empty only when the venue has no data for a stretch; the cache records such stretches
    as known gaps so it does not ask again. Errors are :mod:`tradetower.errors` types:
    ``RateLimitedError`` after retries are exhausted, ``AuthenticationError``,
    ``DataValidationError`` for an unknown symbol or timeframe, ``ExchangeUnavailableError``.
    """

    venue: str

    def asset_class(self, symbol: str) -> str:
        """``"crypto"`` or ``"equity"`` (the cache path's asset-class segment)."""
        ...

    def normalize_symbol(self, symbol: str) -> str:
        """The symbol as the cache keys it, e.g. ``BTC/USD`` and ``btc-usd`` → ``BTC-USD``."""
        ...

    def fetch(
        self,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
        *,
        progress: ProgressCallback | None = None,
    ) -> Iterator[pd.DataFrame]: ...
