"""Historical bars: fetch from venues, cache as Parquet (folder or Azure Blob), catalog.

In a notebook, one call gives bars for a backtest, fetching only what the cache lacks::

    from tradetower.history import load_bars
    bars = load_bars("coinbase", "BTC-USD", "1m", "2024-01-01", "2024-03-01")

The cache is a local folder by default, or an Azure Blob container when
``TRADETOWER_BLOB_URL`` or ``TRADETOWER_BLOB_CONNECTION_STRING`` is set (see
:func:`tradetower.history.store.open_store`). Imports here stay light: pandas, ccxt and
azure load only when a function is called.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from tradetower.domain.bars import MarketData
    from tradetower.history.cache import HistoryCache
    from tradetower.history.source import HistorySource

__all__ = ["load_bars", "load_market", "open_cache", "source_for"]


def source_for(venue: str) -> HistorySource:
    """The history source for ``venue``: ``alpaca`` or any ccxt exchange id."""
    sources = importlib.import_module("tradetower.history.sources")
    source: HistorySource = sources.make_source(venue)
    return source


def open_cache(cache_dir: str | Path | None = None) -> HistoryCache:
    """The configured cache (see :func:`tradetower.history.store.open_store`), fetching
    through :func:`source_for` when asked for bars it lacks."""
    from tradetower.history.cache import HistoryCache
    from tradetower.history.store import open_store

    return HistoryCache(open_store(cache_dir), source_factory=lambda venue: source_for(venue))


def load_bars(
    venue: str,
    symbol: str,
    timeframe: str,
    start: object,
    end: object,
    *,
    offline: bool = False,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Bars in ``[start, end)`` (UTC) as a DataFrame for ``backtest(data=...)``.

    Fetches what the cache lacks from the venue (with a progress bar) unless ``offline``;
    a timeframe the cache does not hold is resampled from a finer one that covers the range.
    """
    return open_cache(cache_dir).load(
        venue, symbol, timeframe, start, end, offline=offline, progress=True
    )


def load_market(
    venue: str,
    symbol: str,
    timeframe: str,
    start: object,
    end: object,
    *,
    offline: bool = False,
    cache_dir: str | Path | None = None,
) -> MarketData:
    """The same bars as :func:`load_bars`, as the engine's ``MarketData`` (the fastest way to
    hand a year of minutes to ``backtest``)."""
    return open_cache(cache_dir).load_market(
        venue, symbol, timeframe, start, end, offline=offline, progress=True
    )
