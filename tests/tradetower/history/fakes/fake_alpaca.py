"""A fake Alpaca market-data server (v2 stocks, v1beta3 crypto), speaking the wire format
alpaca-py's ``StockHistoricalDataClient`` and ``CryptoHistoricalDataClient`` read.

``GET /v2/stocks/bars`` and ``GET /v1beta3/crypto/us/bars`` take ``symbols`` (comma list),
``timeframe`` (``1Min``, ``15Min``, ``1Hour``, ``4Hour``, ``1Day``...), ``start`` and ``end``
(RFC 3339, both inclusive), ``limit`` (default 1000, at most 10000), ``page_token``, ``sort``,
and for stocks ``feed`` and ``adjustment``. They answer ``{"bars": {"AAPL": [{"t":
"2024-01-02T14:30:00Z", "o": .., "h": .., "l": .., "c": .., "v": .., "n": .., "vw": ..}]},
"next_page_token": "..." | null}``, bars ordered by symbol then time, ``next_page_token`` set
while more bars remain. Stock bars need the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``
headers; crypto bars do not.

Stock bars exist in the regular session only (09:30-16:00 New York, weekdays; daily bars open
at New York midnight); crypto trades around the clock. Errors use the venue's body,
``{"code": <8 digits>, "message": "..."}``.
"""

from __future__ import annotations

import base64
import re
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from fakes.fake_http import FakeServer, Reply, Seen
from fakes.synthetic import random_walk, seed_for

STOCKS_PATH = "/v2/stocks/bars"
CRYPTO_PATH = "/v1beta3/crypto/us/bars"
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
UNIT_S = {"Min": 60, "T": 60, "Hour": 3600, "H": 3600, "Day": 86400, "D": 86400}
TIMEFRAME = re.compile(r"^(?P<amount>\d+)(?P<unit>Min|T|Hour|H|Day|D)$")


class FakeAlpaca(FakeServer):
    """Bars for ``stocks`` and ``cryptos`` from ``first`` (inclusive) to ``last`` (exclusive)."""

    def __init__(
        self,
        *,
        stocks: tuple[str, ...] = ("AAPL", "MSFT"),
        cryptos: tuple[str, ...] = ("BTC/USD", "ETH/USD"),
        key: str = "key-id",
        secret: str = "secret-key",
        first: str = "2023-12-20",
        last: str = "2024-03-10",
        seed: int = 11,
    ) -> None:
        super().__init__(self._answer)
        self.stocks = stocks
        self.cryptos = cryptos
        self.key = key
        self.secret = secret
        self.first = pd.Timestamp(first, tz="UTC")
        self.last = pd.Timestamp(last, tz="UTC")
        self.seed = seed
        self._series: dict[tuple[str, int], pd.DataFrame] = {}
        self._failures: deque[Reply] = deque()

    # ----------------------------------------------------------------------------- controls

    def series(self, symbol: str, timeframe: str = "1Min") -> pd.DataFrame:
        """Every bar the venue holds for ``symbol`` (``ts`` ms, floats), oldest first."""
        step = _timeframe_seconds(timeframe)
        if step is None:
            raise ValueError(f"bad timeframe {timeframe!r}")
        key = (symbol, step)
        if key not in self._series:
            is_stock = symbol in self.stocks
            ts_ms = self._open_times(step, is_stock)
            frame = random_walk(ts_ms, seed_for(self.seed, symbol, step), start=180.0)
            if is_stock:
                frame["volume"] = np.round(frame["volume"] * 10_000)
            self._series[key] = frame
        return self._series[key]

    def fail_next(self, count: int, status: int = 429) -> None:
        """The next ``count`` bar requests answer ``status`` (429 or a 5xx) instead of data."""
        body = (
            {"code": 42910000, "message": "rate limit exceeded"}
            if status == 429
            else {"code": 50010000, "message": "internal server error occurred"}
        )
        self._failures.extend(Reply.json(status, body) for _ in range(count))

    def bar_requests(self) -> list[dict[str, str]]:
        """The query of every bars request received, in order."""
        return [seen.query for seen in self.seen if seen.path in (STOCKS_PATH, CRYPTO_PATH)]

    # ------------------------------------------------------------------------------ serving

    def _open_times(self, step: int, is_stock: bool) -> np.ndarray:
        if is_stock and step == 86400:
            days = pd.date_range(self.first.date(), self.last.date(), freq="B", inclusive="left")
            opens = days.tz_localize("America/New_York").tz_convert("UTC")
        else:
            opens = pd.date_range(self.first, self.last, freq=f"{step}s", inclusive="left")
            if is_stock:
                local = opens.tz_convert("America/New_York")
                minutes = local.hour * 60 + local.minute
                in_session = (local.day_of_week < 5) & (minutes >= 570) & (minutes < 960)
                opens = opens[in_session]
        return np.asarray(opens.as_unit("ms").asi8, dtype=np.int64)

    def _answer(self, seen: Seen) -> Reply:
        if seen.path not in (STOCKS_PATH, CRYPTO_PATH):
            return Reply.json(404, {"code": 40410000, "message": "endpoint not found"})
        if not self._authorised(seen):
            return Reply.json(401, {"code": 40110000, "message": "request is not authorized"})
        if self._failures:
            return self._failures.popleft()
        known = self.stocks if seen.path == STOCKS_PATH else self.cryptos
        return self._bars(seen.query, known)

    def _authorised(self, seen: Seen) -> bool:
        key = seen.headers.get("APCA-API-KEY-ID")
        secret = seen.headers.get("APCA-API-SECRET-KEY")
        if seen.path == CRYPTO_PATH and key is None and secret is None:
            return True
        return (key, secret) == (self.key, self.secret)

    def _bars(self, query: dict[str, str], known: tuple[str, ...]) -> Reply:
        symbols = [s for s in query.get("symbols", "").split(",") if s]
        for symbol in symbols:
            if symbol not in known:
                return _invalid(40010001, f"invalid symbol: {symbol}", status=400)
        timeframe = query.get("timeframe", "")
        if _timeframe_seconds(timeframe) is None:
            return _invalid(42210000, "invalid timeframe")
        limit = int(query.get("limit", DEFAULT_LIMIT))
        if not 1 <= limit <= MAX_LIMIT:
            return _invalid(42210000, f"invalid limit: must be between 1 and {MAX_LIMIT}")
        start = _ms(query["start"]) if "start" in query else 0
        end = _ms(query["end"]) if "end" in query else int(self.last.value // 1_000_000)
        if end < start:
            return _invalid(42210000, "end should not be before start")
        rows = [
            (symbol, row)
            for symbol in sorted(symbols)
            for row in self._window(symbol, timeframe, start, end, query.get("sort", "asc"))
        ]
        first = _resume_index(rows, query.get("page_token"))
        page, rest = rows[first : first + limit], rows[first + limit :]
        bars: dict[str, list[dict[str, Any]]] = {}
        for symbol, row in page:
            bars.setdefault(symbol, []).append(_bar(row, stock=symbol in self.stocks))
        token = _token(*rest[0]) if rest else None
        return Reply.json(200, {"bars": bars, "next_page_token": token})

    def _window(self, symbol: str, timeframe: str, start: int, end: int, sort: str) -> list[Any]:
        frame = self.series(symbol, timeframe)
        window = frame[(frame["ts"] >= start) & (frame["ts"] <= end)]
        if sort == "desc":
            window = window.iloc[::-1]
        return list(window.itertuples())


def _timeframe_seconds(timeframe: str) -> int | None:
    match = TIMEFRAME.match(timeframe)
    return int(match["amount"]) * UNIT_S[match["unit"]] if match else None


def _ms(text: str) -> int:
    when = datetime.fromisoformat(text)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _token(symbol: str, row: Any) -> str:
    return base64.b64encode(f"{symbol}|{row.ts}".encode()).decode()


def _resume_index(rows: list[tuple[str, Any]], token: str | None) -> int:
    if not token:
        return 0
    symbol, ts = base64.b64decode(token).decode().split("|")
    for index, (row_symbol, row) in enumerate(rows):
        if row_symbol == symbol and row.ts == int(ts):
            return index
    return len(rows)


def _bar(row: Any, *, stock: bool) -> dict[str, Any]:
    stamp = pd.Timestamp(row.ts, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "t": stamp,
        "o": row.open,
        "h": row.high,
        "l": row.low,
        "c": row.close,
        "v": int(row.volume) if stock else row.volume,
        "n": 1 + int(row.volume) % 97,
        "vw": round((row.high + row.low + row.close) / 3, 4),
    }


def _invalid(code: int, message: str, status: int = 422) -> Reply:
    return Reply.json(status, {"code": code, "message": message})
