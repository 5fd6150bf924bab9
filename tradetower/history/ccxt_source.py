"""History from any ccxt exchange (Coinbase by default) through ccxt's synchronous
``fetch_ohlcv``.

Pages are windows of ``limit`` candles from ``since``: the exchange's own page size from
``exchange.features`` (Coinbase: 300), else 300. A window that comes back empty means the
venue has no data there; the next one starts a window later, so a hole never loops. A window
with data is followed from just after its last candle, so a venue that pages smaller than we
thought loses nothing. ccxt's own limiter (``enableRateLimit``) paces the calls; 429s and
network errors are retried with exponential back-off.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar

import ccxt  # type: ignore[import-untyped]
import pandas as pd

from tradetower.errors import (
    AuthenticationError,
    ConnectorError,
    DataValidationError,
    ExchangeUnavailableError,
    RateLimitedError,
    TradeTowerError,
)
from tradetower.history.source import ProgressCallback
from tradetower.history.source_tools import (
    Backoff,
    Sleep,
    check_range,
    complete_stop,
    covering,
    page_frame,
    timeframe_ms,
    wall_clock_ms,
    with_retries,
)

T = TypeVar("T")

#: Candles per call when the exchange does not say (Coinbase's documented page).
DEFAULT_PAGE_LIMIT = 300

_SEPARATOR = re.compile(r"[-/_]")
#: gRPC-style status names (Coinbase Advanced Trade: ``{"error": "NOT_FOUND", ...}``) that
#: ccxt's error table does not know and raises as a bare ``ExchangeError``.
_STATUS_NAME = re.compile(r'"error"\s*:\s*"([A-Z_]+)"')


class CcxtSource:
    """A :class:`~tradetower.history.source.HistorySource` over one ccxt exchange.

    Args:
        exchange_id: a ccxt id (``ccxt.exchanges``); ignored when ``exchange`` is given.
        exchange: a ready ccxt exchange (tests point one at a fake server).
        max_retries: retries of a rate-limited or failed call before giving up.
        backoff_s: the first retry's wait; each further one doubles it.
        sleep: how to wait between retries (tests record instead).
        now_ms: the clock that decides which candle is still forming.
        page_limit: candles per call, overriding what the exchange advertises.
    """

    def __init__(
        self,
        exchange_id: str = "coinbase",
        *,
        exchange: Any | None = None,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        sleep: Sleep = time.sleep,
        now_ms: Callable[[], int] = wall_clock_ms,
        page_limit: int | None = None,
    ) -> None:
        self.exchange: Any = exchange if exchange is not None else _make_exchange(exchange_id)
        self.venue: str = str(self.exchange.id)
        if not self.exchange.has.get("fetchOHLCV"):
            raise DataValidationError(f"{self.venue}: ccxt offers no candle history for it")
        self._backoff = Backoff(max_retries=max_retries, base_s=backoff_s)
        self._sleep = sleep
        self._now_ms = now_ms
        self._page_limit = page_limit

    # ------------------------------------------------------------------------------ symbols

    def asset_class(self, symbol: str) -> str:
        return "crypto"

    def normalize_symbol(self, symbol: str) -> str:
        """``BTC/USD``, ``btc-usd``, ``BTC_USD`` → ``BTC-USD`` (the cache key)."""
        return self.ccxt_symbol(symbol).replace("/", "-")

    def ccxt_symbol(self, symbol: str) -> str:
        """The unified symbol ccxt expects: ``btc-usd`` → ``BTC/USD`` (``:SETTLE`` kept)."""
        pair, colon, settle = symbol.strip().upper().partition(":")
        parts = _SEPARATOR.split(pair)
        if len(parts) != 2 or not all(part.isalnum() for part in parts):
            raise DataValidationError(
                f"{self.venue}: symbol {symbol!r} must name a base and a quote, e.g. BTC-USD"
            )
        return f"{parts[0]}/{parts[1]}" + (f":{settle}" if colon else "")

    # -------------------------------------------------------------------------------- fetch

    def fetch(
        self,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
        *,
        progress: ProgressCallback | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Pages of complete candles with ``start_ms <= ts < end_ms``, oldest first.

        Symbol, timeframe and range are checked here, before any request.
        """
        unified = self.ccxt_symbol(symbol)
        offered = self.exchange.timeframes or None
        tf_ms = timeframe_ms(self.venue, timeframe, offered)
        check_range(self.venue, start_ms, end_ms)
        return self._pages(unified, timeframe, tf_ms, start_ms, end_ms, progress)

    def _pages(
        self,
        unified: str,
        timeframe: str,
        tf_ms: int,
        start_ms: int,
        end_ms: int,
        progress: ProgressCallback | None,
    ) -> Iterator[pd.DataFrame]:
        market = self._market(unified)
        limit = self._page_limit or ohlcv_page_limit(self.exchange, market)
        stop = complete_stop(end_ms, tf_ms, self._now_ms())
        since = start_ms
        while since < stop:
            window_end = min(since + limit * tf_ms, stop)
            ask = partial(
                self.exchange.fetch_ohlcv,
                unified,
                timeframe,
                since,
                limit,
                {"until": window_end - 1},
            )
            page = page_frame(self._call(ask, unified), since, window_end)
            next_since = int(page["ts"].iloc[-1]) + tf_ms if len(page) else window_end
            if progress is not None:
                progress(len(page))
            yield covering(page, since, next_since)
            since = next_since

    def _market(self, unified: str) -> Mapping[str, Any]:
        markets = self._call(self.exchange.load_markets, unified)
        if unified not in markets:
            raise DataValidationError(f"{self.venue}: unknown symbol {unified.replace('/', '-')!r}")
        market: Mapping[str, Any] = markets[unified]
        return market

    def _call(self, call: Callable[[], T], unified: str) -> T:
        return with_retries(
            call, partial(self._translate, unified=unified), self._backoff, self._sleep
        )

    def _translate(self, exc: Exception, *, unified: str) -> TradeTowerError | None:
        """ccxt's exception → ours; ``None`` for anything that is not a ccxt error."""
        if not isinstance(exc, ccxt.BaseError):
            return None
        text = str(exc)
        found = _STATUS_NAME.search(text)
        status = found.group(1) if found else ""
        venue = self.venue
        if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection) or (
            status == "RESOURCE_EXHAUSTED"
        ):
            return RateLimitedError(
                f"rate limited: {text}", broker=venue, retry_after=self._retry_after()
            )
        if isinstance(exc, ccxt.AuthenticationError) or status in {
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
        }:
            return AuthenticationError(f"credentials refused: {text}", broker=venue)
        if isinstance(exc, ccxt.BadSymbol) or status == "NOT_FOUND":
            return DataValidationError(f"{venue}: unknown symbol {unified.replace('/', '-')!r}")
        if isinstance(exc, ccxt.BadRequest):
            return DataValidationError(f"{venue}: request refused: {text}")
        if isinstance(exc, ccxt.NetworkError) or status in {"UNAVAILABLE", "INTERNAL"}:
            return ExchangeUnavailableError(f"unavailable: {text}", broker=venue)
        return ConnectorError(text, broker=venue)

    def _retry_after(self) -> float | None:
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        value = headers.get("Retry-After") if hasattr(headers, "get") else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


def ohlcv_page_limit(exchange: Any, market: Mapping[str, Any]) -> int:
    """Candles per ``fetch_ohlcv`` call for this market, from ``exchange.features``."""
    features = (exchange.features or {}).get(market.get("type") or "spot") or {}
    if market.get("contract"):
        features = features.get("linear" if market.get("linear") else "inverse") or {}
    limit = (features.get("fetchOHLCV") or {}).get("limit")
    return limit if isinstance(limit, int) and limit > 0 else DEFAULT_PAGE_LIMIT


def _make_exchange(exchange_id: str) -> Any:
    if exchange_id not in ccxt.exchanges:
        raise DataValidationError(f"unknown ccxt exchange {exchange_id!r}")
    return getattr(ccxt, exchange_id)({"enableRateLimit": True})
