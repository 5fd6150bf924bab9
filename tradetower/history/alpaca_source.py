"""History from Alpaca (US equities and crypto) through alpaca-py's data clients.

Pages are time windows of ``window_bars`` bars (10,000 by default, Alpaca's largest page):
one ``get_stock_bars`` / ``get_crypto_bars`` call per window, so progress is reported per
window; within a window alpaca-py itself follows ``next_page_token`` (``limit`` is left unset),
so a window never comes back cut short. Calls are paced at 90 % of Alpaca's 200 requests a
minute. The SDK's own retries (3 s waits, 429 and 504 only) are switched off; ours retry 429,
5xx and network errors with exponential back-off.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import partial
from typing import TypeVar

import pandas as pd
import pydantic
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
from alpaca.data.models import Bar, BarSet
from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from tradetower.errors import (
    AuthenticationError,
    ConnectorError,
    DataValidationError,
    ExchangeUnavailableError,
    RateLimitedError,
    SchemaMismatchError,
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

EnumT = TypeVar("EnumT", bound=Enum)

VENUE = "alpaca"
#: Quote currencies that make a ``BASE/QUOTE`` or ``BASE-QUOTE`` symbol a crypto pair.
CRYPTO_QUOTES = frozenset({"USD", "USDT", "USDC", "BTC"})
#: Alpaca allows 200 requests a minute per account; we stay at 90 % of it.
DEFAULT_MIN_INTERVAL_S = 60.0 / 180.0
#: Bars per window: Alpaca's largest page, so a window is one request when the venue is full.
DEFAULT_WINDOW_BARS = 10_000

_TIMEFRAMES = {
    "1m": TimeFrame(1, TimeFrameUnit.Minute),
    "5m": TimeFrame(5, TimeFrameUnit.Minute),
    "15m": TimeFrame(15, TimeFrameUnit.Minute),
    "1h": TimeFrame(1, TimeFrameUnit.Hour),
    "4h": TimeFrame(4, TimeFrameUnit.Hour),
    "1d": TimeFrame(1, TimeFrameUnit.Day),
}
_CRYPTO_PAIR = re.compile(r"^([A-Z0-9]+)[/-]([A-Z0-9]+)$")
_EQUITY = re.compile(r"^[A-Z0-9]+(\.[A-Z0-9]+)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AlpacaSource:
    """A :class:`~tradetower.history.source.HistorySource` over Alpaca's market data API.

    Args:
        api_key, secret_key: Alpaca keys; default to ``APCA_API_KEY_ID`` /
            ``APCA_API_SECRET_KEY``. Stock bars need them; crypto bars do not.
        url_override: another data host (tests point it at a fake server).
        feed: stock feed, ``iex`` (free) or ``sip`` (paid).
        adjustment: corporate-action adjustment of stock bars: raw, split, dividend or all.
        max_retries, backoff_s, sleep: retry policy, as for :class:`CcxtSource`.
        clock: monotonic seconds, for pacing; now_ms: wall clock deciding the forming bar.
        window_bars: bars per window (one progress step each).
        min_interval_s: least time between two window requests.
    """

    venue = VENUE

    def __init__(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        *,
        url_override: str | None = None,
        feed: str = "iex",
        adjustment: str = "split",
        max_retries: int = 5,
        backoff_s: float = 1.0,
        sleep: Sleep = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = wall_clock_ms,
        window_bars: int = DEFAULT_WINDOW_BARS,
        min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
    ) -> None:
        self._api_key = api_key or os.environ.get("APCA_API_KEY_ID") or None
        self._secret_key = secret_key or os.environ.get("APCA_API_SECRET_KEY") or None
        self._url_override = url_override
        self._feed = _choice("feed", feed, DataFeed)
        self._adjustment = _choice("adjustment", adjustment, Adjustment)
        if window_bars < 1:
            raise DataValidationError(f"{VENUE}: window_bars must be at least 1, not {window_bars}")
        self._backoff = Backoff(max_retries=max_retries, base_s=backoff_s)
        self._sleep = sleep
        self._clock = clock
        self._now_ms = now_ms
        self._window_bars = window_bars
        self._min_interval_s = min_interval_s
        self._next_call_at = float("-inf")
        self._stock_client: StockHistoricalDataClient | None = None
        self._crypto_client: CryptoHistoricalDataClient | None = None

    # ------------------------------------------------------------------------------ symbols

    def asset_class(self, symbol: str) -> str:
        return "crypto" if self._crypto_pair(symbol) else "equity"

    def normalize_symbol(self, symbol: str) -> str:
        """``btc/usd`` → ``BTC-USD``; ``aapl`` → ``AAPL``; ``BRK/B``, ``brk-b`` → ``BRK.B``."""
        pair = self._crypto_pair(symbol)
        return f"{pair[0]}-{pair[1]}" if pair else self._equity(symbol)

    def alpaca_symbol(self, symbol: str) -> str:
        """The symbol as Alpaca names it: ``BTC/USD``, ``AAPL``, ``BRK.B``."""
        pair = self._crypto_pair(symbol)
        return f"{pair[0]}/{pair[1]}" if pair else self._equity(symbol)

    @staticmethod
    def _crypto_pair(symbol: str) -> tuple[str, str] | None:
        match = _CRYPTO_PAIR.match(symbol.strip().upper())
        if match and match.group(2) in CRYPTO_QUOTES:
            return match.group(1), match.group(2)
        return None

    @staticmethod
    def _equity(symbol: str) -> str:
        ticker = re.sub(r"[/\- ]", ".", symbol.strip().upper())
        if not _EQUITY.match(ticker):
            raise DataValidationError(f"{VENUE}: {symbol!r} is not a stock ticker or crypto pair")
        return ticker

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
        """Pages of complete bars with ``start_ms <= ts < end_ms``, one per time window.

        Symbol, timeframe, range and (for stocks) keys are checked here, before any request.
        """
        name = self.alpaca_symbol(symbol)
        crypto = self.asset_class(symbol) == "crypto"
        tf_ms = timeframe_ms(VENUE, timeframe)
        check_range(VENUE, start_ms, end_ms)
        if not crypto and not (self._api_key and self._secret_key):
            raise AuthenticationError(
                "stock bars need API keys: pass api_key and secret_key, or set "
                "APCA_API_KEY_ID and APCA_API_SECRET_KEY",
                broker=VENUE,
            )
        return self._pages(name, crypto, timeframe, tf_ms, start_ms, end_ms, progress)

    def _pages(
        self,
        name: str,
        crypto: bool,
        timeframe: str,
        tf_ms: int,
        start_ms: int,
        end_ms: int,
        progress: ProgressCallback | None,
    ) -> Iterator[pd.DataFrame]:
        stop = complete_stop(end_ms, tf_ms, self._now_ms())
        since = start_ms
        while since < stop:
            until = min(since + self._window_bars * tf_ms, stop)
            # Alpaca's ``end`` is inclusive: stop a second short of the next window.
            ask = partial(self._bars, name, crypto, timeframe, since, until - 1000)
            bars = with_retries(ask, partial(_translate, name=name), self._backoff, self._sleep)
            page = page_frame([_row(bar) for bar in bars], since, until)
            if progress is not None:
                progress(len(page))
            yield covering(page, since, until)
            since = until

    def _bars(
        self, name: str, crypto: bool, timeframe: str, start_ms: int, last_ms: int
    ) -> list[Bar]:
        self._pace()
        start, end = _utc(start_ms), _utc(last_ms)
        if crypto:
            answer = self._crypto().get_crypto_bars(
                CryptoBarsRequest(
                    symbol_or_symbols=name, timeframe=_TIMEFRAMES[timeframe], start=start, end=end
                )
            )
        else:
            answer = self._stocks().get_stock_bars(
                StockBarsRequest(
                    symbol_or_symbols=name,
                    timeframe=_TIMEFRAMES[timeframe],
                    start=start,
                    end=end,
                    feed=self._feed,
                    adjustment=self._adjustment,
                )
            )
        if not isinstance(answer, BarSet):
            raise SchemaMismatchError("bars did not parse into a BarSet", broker=VENUE)
        return list(answer.data.get(name, []))

    def _pace(self) -> None:
        """Wait until ``min_interval_s`` has passed since the previous request."""
        now = self._clock()
        wait = self._next_call_at - now
        if wait > 0:
            self._sleep(wait)
        self._next_call_at = max(now, self._next_call_at) + self._min_interval_s

    def _stocks(self) -> StockHistoricalDataClient:
        if self._stock_client is None:
            self._stock_client = _quiet(
                StockHistoricalDataClient(
                    self._api_key, self._secret_key, url_override=self._url_override
                )
            )
        return self._stock_client

    def _crypto(self) -> CryptoHistoricalDataClient:
        if self._crypto_client is None:
            self._crypto_client = _quiet(
                CryptoHistoricalDataClient(
                    self._api_key, self._secret_key, url_override=self._url_override
                )
            )
        return self._crypto_client


ClientT = TypeVar("ClientT", bound=RESTClient)


def _quiet(client: ClientT) -> ClientT:
    """No SDK retries: ours own the back-off (exact, injectable, and covering 5xx too)."""
    client._retry = 0
    client._retry_wait = 0
    return client


def _translate(exc: Exception, *, name: str) -> TradeTowerError | None:
    """alpaca-py's exception → ours; ``None`` for anything that is not the venue's doing."""
    if isinstance(exc, APIError):
        status = exc.status_code or 0
        message = _api_message(exc)
        if status in (401, 403):
            return AuthenticationError(
                f"credentials refused (HTTP {status}): {message}", broker=VENUE
            )
        if status == 429:
            return RateLimitedError(
                f"rate limited (HTTP 429): {message}", broker=VENUE, retry_after=_retry_after(exc)
            )
        if status in (400, 422):
            if "symbol" in message.lower():
                return DataValidationError(f"{VENUE}: unknown symbol {name!r} ({message})")
            return DataValidationError(f"{VENUE}: request refused (HTTP {status}): {message}")
        if status >= 500:
            return ExchangeUnavailableError(f"HTTP {status}: {message}", broker=VENUE)
        return ConnectorError(f"HTTP {status}: {message}", broker=VENUE)
    if isinstance(exc, OSError):  # requests' ConnectionError and Timeout are OSErrors
        return ExchangeUnavailableError(f"unreachable: {exc}", broker=VENUE)
    if isinstance(exc, pydantic.ValidationError):
        return SchemaMismatchError(f"bars did not parse: {exc}", broker=VENUE)
    return None


def _api_message(exc: APIError) -> str:
    try:
        return str(exc.message)
    except (ValueError, KeyError, TypeError):
        return str(exc)


def _retry_after(exc: APIError) -> float | None:
    response = exc.response
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _row(bar: Bar) -> list[float | int | None]:
    ts = (bar.timestamp - _EPOCH) // timedelta(milliseconds=1)
    return [ts, bar.open, bar.high, bar.low, bar.close, bar.volume]


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _choice(what: str, value: str, allowed: type[EnumT]) -> EnumT:
    for member in allowed:
        if member.value == value:
            return member
    options = ", ".join(str(member.value) for member in allowed)
    raise DataValidationError(f"{VENUE}: {what} {value!r} is not one of {options}")
