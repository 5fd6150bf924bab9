"""A fake Coinbase Advanced Trade market-data server, speaking the wire format ccxt's
``coinbase.fetch_ohlcv`` reads.

``GET /api/v3/brokerage/market/products/{product_id}/candles?granularity=ONE_MINUTE&start=<unix s>
&end=<unix s>[&limit=n]`` answers ``{"candles": [{"start": "<unix s>", "low": "..", "high": "..",
"open": "..", "close": "..", "volume": ".."}, ...]}``, newest first, every number a string.
Like the venue it refuses a window of more than 350 buckets (``INVALID_ARGUMENT``) and returns at
most ``limit`` (default 350) candles. ``end`` is treated as inclusive, the stricter reading of the
docs, so a client must not rely on the venue cutting the candle that opens at ``end``.

Error bodies are the venue's: an unknown product is ``404 {"error": "NOT_FOUND", ...}``; a rate
limit is ``429 {"errors": [{"id": "rate_limit_exceeded", ...}]}``; refused credentials are a plain
``401 Unauthorized``; an overloaded edge answers a plain ``503``.
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import ccxt  # type: ignore[import-untyped]
import numpy as np
import pandas as pd
from fakes.fake_http import FakeServer, Reply, Seen
from fakes.synthetic import random_walk, seed_for

GRANULARITY_S = {
    "ONE_MINUTE": 60,
    "FIVE_MINUTE": 300,
    "FIFTEEN_MINUTE": 900,
    "THIRTY_MINUTE": 1800,
    "ONE_HOUR": 3600,
    "TWO_HOUR": 7200,
    "FOUR_HOUR": 14400,
    "SIX_HOUR": 21600,
    "ONE_DAY": 86400,
}
MAX_CANDLES = 350
_RENDERED: dict[tuple[Any, ...], tuple[np.ndarray, list[str]]] = {}
CANDLES_PATH = re.compile(r"^/api/v3/brokerage/market/products/(?P<product>[^/]+)/candles$")


def _seconds(when: str) -> int:
    return int(pd.Timestamp(when, tz="UTC").timestamp())


class FakeCoinbase(FakeServer):
    """Candles for ``products`` from ``first`` (inclusive) to ``last`` (exclusive), UTC."""

    def __init__(
        self,
        products: tuple[str, ...] = ("BTC-USD", "ETH-USD"),
        *,
        first: str = "2023-12-20",
        last: str = "2024-03-10",
        seed: int = 7,
    ) -> None:
        super().__init__(self._answer)
        self.products = products
        self.first_s = _seconds(first)
        self.last_s = _seconds(last)
        self.seed = seed
        self._series: dict[tuple[str, int], pd.DataFrame] = {}
        self._holes: dict[str, list[tuple[int, int]]] = {}
        self._failures: deque[Reply] = deque()
        self._refuse_all = False

    # ----------------------------------------------------------------------------- controls

    def series(self, product: str, granularity: str = "ONE_MINUTE") -> pd.DataFrame:
        """Every candle the venue holds (``ts`` ms, floats), oldest first, holes removed."""
        step = GRANULARITY_S[granularity]
        key = (product, step)
        if key not in self._series:
            ts_ms = np.arange(self.first_s, self.last_s, step, dtype=np.int64) * 1000
            self._series[key] = random_walk(ts_ms, seed_for(self.seed, product, step), start=42000)
        frame = self._series[key]
        for start_s, end_s in self._holes.get(product, []):
            frame = frame[(frame["ts"] < start_s * 1000) | (frame["ts"] >= end_s * 1000)]
        return frame.reset_index(drop=True)

    def remove(self, product: str, start: str, end: str) -> None:
        """The venue has no candles for ``product`` in ``[start, end)`` (a listing gap)."""
        self._holes.setdefault(product, []).append((_seconds(start), _seconds(end)))

    def fail_next(self, count: int, status: int = 429) -> None:
        """The next ``count`` candle requests answer ``status`` (429 or 503) instead of data."""
        for _ in range(count):
            if status == 429:
                body = {"errors": [{"id": "rate_limit_exceeded", "message": "Too many requests"}]}
                self._failures.append(Reply.json(429, body))
            else:
                self._failures.append(Reply.text(status, "upstream connect error"))

    def refuse_credentials(self) -> None:
        """Every request answers 401, as the venue does for a refused JWT."""
        self._refuse_all = True

    def candle_requests(self) -> list[dict[str, str]]:
        """The query of every candles request received, in order."""
        return [seen.query for seen in self.seen if CANDLES_PATH.match(seen.path)]

    # ------------------------------------------------------------------------------ serving

    def _answer(self, seen: Seen) -> Reply:
        if self._refuse_all:
            return Reply.text(401, "Unauthorized\n")
        match = CANDLES_PATH.match(seen.path)
        if match is None:
            return Reply.json(404, _error("NOT_FOUND", "Not Found"))
        if self._failures:
            return self._failures.popleft()
        product = match["product"]
        if product not in self.products:
            return Reply.json(404, _error("NOT_FOUND", "valid product_id is required"))
        return self._candles(product, seen.query)

    def _candles(self, product: str, query: dict[str, str]) -> Reply:
        granularity = query.get("granularity", "")
        if granularity not in GRANULARITY_S:
            return Reply.json(400, _error("INVALID_ARGUMENT", "granularity argument is invalid"))
        try:
            start_s, end_s = int(query["start"]), int(query["end"])
            limit = int(query.get("limit", MAX_CANDLES))
        except (KeyError, ValueError):
            return Reply.json(400, _error("INVALID_ARGUMENT", "start and end are required"))
        step = GRANULARITY_S[granularity]
        if (end_s - start_s) // step > MAX_CANDLES or limit > MAX_CANDLES:
            message = f"number of candles requested should be less than {MAX_CANDLES}"
            return Reply.json(400, _error("INVALID_ARGUMENT", message))
        ts_s, fragments = self._render(product, step)
        lo, hi = np.searchsorted(ts_s, start_s, "left"), np.searchsorted(ts_s, end_s, "right")
        newest_first = fragments[lo:hi][::-1][:limit]
        return Reply(200, ('{"candles": [' + ", ".join(newest_first) + "]}").encode())

    def _render(self, product: str, step: int) -> tuple[np.ndarray, list[str]]:
        """Open times (s) and each candle's JSON, made once per series and kept for the whole
        test session (same seed, span and holes, same text): keeps every page cheap."""
        holes = tuple(self._holes.get(product, ()))
        key = (self.seed, self.first_s, self.last_s, product, step, holes)
        if key not in _RENDERED:
            granularity = next(name for name, s in GRANULARITY_S.items() if s == step)
            frame = self.series(product, granularity)
            fragments = [json.dumps(_candle(row)) for row in frame.itertuples()]
            _RENDERED[key] = (frame["ts"].to_numpy() // 1000, fragments)
        return _RENDERED[key]


def _candle(row: Any) -> dict[str, str]:
    return {
        "start": str(row.ts // 1000),
        "low": f"{row.low:.2f}",
        "high": f"{row.high:.2f}",
        "open": f"{row.open:.2f}",
        "close": f"{row.close:.2f}",
        "volume": f"{row.volume:.8f}",
    }


def _error(code: str, message: str) -> dict[str, str]:
    return {"error": code, "error_details": message, "message": message}


def point_at(exchange: Any, base_url: str) -> None:
    """Rewrite every host in ``exchange.urls['api']`` to the fake's, keeping the paths."""

    def rewrite(value: Any) -> Any:
        if isinstance(value, str):
            return base_url + urlsplit(value).path
        if isinstance(value, dict):
            return {key: rewrite(item) for key, item in value.items()}
        return value

    exchange.urls["api"] = rewrite(exchange.urls["api"])


def spot_market(product: str) -> dict[str, Any]:
    """The market entry ccxt's ``load_markets`` would build for a Coinbase spot product."""
    base, quote = product.split("-")
    return {
        "id": product,
        "symbol": f"{base}/{quote}",
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
        "type": "spot",
        "spot": True,
        "active": True,
    }


def coinbase_exchange(base_url: str, products: tuple[str, ...] = ("BTC-USD", "ETH-USD")) -> Any:
    """ccxt's real ``coinbase`` class aimed at a fake, markets set so nothing else is asked.

    The limiter stays on (``enableRateLimit``) with a 1 ms rate so tests stay quick.
    """
    exchange = ccxt.coinbase({"enableRateLimit": True, "rateLimit": 1})
    point_at(exchange, base_url)
    exchange.set_markets([spot_market(product) for product in products])
    return exchange
