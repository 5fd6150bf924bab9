"""CcxtSource through ccxt's real ``coinbase`` class against a fake Coinbase server."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fakes.fake_coinbase import FakeCoinbase, coinbase_exchange

from tradetower.errors import (
    AuthenticationError,
    DataValidationError,
    ExchangeUnavailableError,
    RateLimitedError,
)
from tradetower.history.ccxt_source import CcxtSource, ohlcv_page_limit
from tradetower.history.source import PAGE_COLUMNS
from tradetower.history.source_tools import page_frame

MINUTE = 60_000
#: The fake's history ends 2024-03-10; by default every candle asked for has closed.
NOW = int(pd.Timestamp("2024-03-10", tz="UTC").value // 1_000_000)


def ms(when: str) -> int:
    return int(pd.Timestamp(when, tz="UTC").value // 1_000_000)


@pytest.fixture
def fake() -> Iterator[FakeCoinbase]:
    with FakeCoinbase() as server:
        yield server


class Recorder:
    """Stands in for ``time.sleep`` and for progress callbacks: remembers every call."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, value: Any) -> None:
        self.calls.append(value)


def source_for(
    fake: FakeCoinbase, sleeps: Recorder | None = None, *, now: int = NOW, **options: Any
) -> CcxtSource:
    return CcxtSource(
        exchange=coinbase_exchange(fake.url),
        sleep=sleeps if sleeps is not None else Recorder(),
        now_ms=lambda: now,
        **options,
    )


def expected(fake: FakeCoinbase, start: int, end: int, product: str = "BTC-USD") -> pd.DataFrame:
    series = fake.series(product)
    return series[(series["ts"] >= start) & (series["ts"] < end)].reset_index(drop=True)


def fetch_all(source: CcxtSource, symbol: str, start: int, end: int, **kw: Any) -> pd.DataFrame:
    return pd.concat(list(source.fetch(symbol, "1m", start, end, **kw)), ignore_index=True)


def test_two_months_of_minutes_come_back_complete_ascending_unique_and_exact(
    fake: FakeCoinbase,
) -> None:
    start, end = ms("2024-01-01"), ms("2024-03-01")
    pages = list(source_for(fake).fetch("BTC-USD", "1m", start, end))

    bars = pd.concat(pages, ignore_index=True)
    pd.testing.assert_frame_equal(bars, expected(fake, start, end), check_exact=True)
    assert len(bars) == 60 * 24 * 60
    assert bars["ts"].is_monotonic_increasing and bars["ts"].is_unique
    assert (bars["ts"].iloc[0], bars["ts"].iloc[-1]) == (start, end - MINUTE)
    assert list(bars.columns) == list(PAGE_COLUMNS)
    assert bars.dtypes.tolist() == [np.int64] + [np.float64] * 5
    # Coinbase pages hold 300 candles: 86,400 candles take 288 calls, one page each.
    assert len(pages) == len(fake.candle_requests()) == 288
    assert {len(page) for page in pages} == {300}
    first = fake.candle_requests()[0]
    assert first == {"granularity": "ONE_MINUTE", "start": "1704067200", "end": "1704085199"}


def test_newest_first_answers_come_back_ascending(fake: FakeCoinbase) -> None:
    start, end = ms("2024-01-02"), ms("2024-01-02 01:00")
    url = f"{fake.url}/api/v3/brokerage/market/products/BTC-USD/candles"
    query = f"?granularity=ONE_MINUTE&start={start // 1000}&end={end // 1000 - 1}"
    with urllib.request.urlopen(url + query) as reply:
        raw = [int(c["start"]) for c in json.load(reply)["candles"]]
    assert raw == sorted(raw, reverse=True) and len(raw) == 60  # the venue: newest first

    bars = fetch_all(source_for(fake), "BTC-USD", start, end)
    assert bars["ts"].tolist() == [start + i * MINUTE for i in range(60)]


def test_page_frame_sorts_drops_duplicates_and_keeps_the_window() -> None:
    rows = [
        [180_000, 3.0, 3.0, 3.0, 3.0, 1.0],
        [120_000, 2.0, 2.0, 2.0, 2.0, 1.0],
        [120_000, 9.0, 9.0, 9.0, 9.0, 9.0],
        [60_000, 1.0, 1.0, 1.0, 1.0, 1.0],
        [0, 0.0, 0.0, 0.0, 0.0, 1.0],
    ]
    page = page_frame(rows, 60_000, 180_000)
    assert page["ts"].tolist() == [60_000, 120_000]
    assert page["open"].tolist() == [1.0, 2.0]


def test_the_candle_still_forming_is_dropped(fake: FakeCoinbase) -> None:
    now = ms("2024-02-01 12:00:30")
    bars = fetch_all(
        source_for(fake, now=now), "BTC-USD", ms("2024-02-01 11:50"), ms("2024-02-01 13:00")
    )

    assert ms("2024-02-01 12:00") in set(fake.series("BTC-USD")["ts"])  # the venue has it
    assert bars["ts"].tolist() == [ms("2024-02-01 11:50") + i * MINUTE for i in range(10)]


def test_rate_limited_twice_then_served_retries_with_exact_backoff(fake: FakeCoinbase) -> None:
    sleeps = Recorder()
    fake.fail_next(2, status=429)
    start, end = ms("2024-01-05"), ms("2024-01-05 02:00")

    bars = fetch_all(source_for(fake, sleeps), "BTC-USD", start, end)

    pd.testing.assert_frame_equal(bars, expected(fake, start, end), check_exact=True)
    assert sleeps.calls == [1.0, 2.0]
    assert len(fake.candle_requests()) == 3


def test_rate_limited_for_ever_gives_up_after_max_retries(fake: FakeCoinbase) -> None:
    sleeps = Recorder()
    fake.fail_next(100, status=429)
    source = source_for(fake, sleeps, max_retries=3, backoff_s=0.5)

    with pytest.raises(RateLimitedError) as caught:
        list(source.fetch("BTC-USD", "1m", ms("2024-01-05"), ms("2024-01-06")))

    assert sleeps.calls == [0.5, 1.0, 2.0]
    assert len(fake.candle_requests()) == 4
    assert caught.value.broker == "coinbase"
    assert "gave up after 3 retries" in str(caught.value)


def test_refused_credentials_raise_authentication_error_without_retrying(
    fake: FakeCoinbase,
) -> None:
    sleeps = Recorder()
    fake.refuse_credentials()

    with pytest.raises(AuthenticationError, match=r"\[coinbase\] credentials refused"):
        list(source_for(fake, sleeps).fetch("BTC-USD", "1m", ms("2024-01-05"), ms("2024-01-06")))
    assert sleeps.calls == []
    assert len(fake.candle_requests()) == 1


def test_symbol_unknown_to_ccxt_markets_is_refused_before_any_request(fake: FakeCoinbase) -> None:
    source = source_for(fake)
    with pytest.raises(DataValidationError) as caught:
        list(source.fetch("xxx-yyy", "1m", ms("2024-01-05"), ms("2024-01-06")))
    assert str(caught.value) == "coinbase: unknown symbol 'XXX-YYY'"
    assert fake.candle_requests() == []


def test_symbol_the_venue_answers_not_found_for_is_named(fake: FakeCoinbase) -> None:
    exchange = coinbase_exchange(fake.url, products=("BTC-USD", "DOGE-USD"))
    source = CcxtSource(exchange=exchange, sleep=Recorder(), now_ms=lambda: NOW)
    with pytest.raises(DataValidationError) as caught:
        list(source.fetch("DOGE/USD", "1m", ms("2024-01-05"), ms("2024-01-06")))
    assert str(caught.value) == "coinbase: unknown symbol 'DOGE-USD'"
    assert len(fake.candle_requests()) == 1


def test_a_day_without_candles_yields_the_rest_and_terminates(fake: FakeCoinbase) -> None:
    fake.remove("BTC-USD", "2024-01-03", "2024-01-04")
    start, end = ms("2024-01-01"), ms("2024-01-06")
    pages = list(source_for(fake).fetch("BTC-USD", "1m", start, end))

    bars = pd.concat(pages, ignore_index=True)
    pd.testing.assert_frame_equal(bars, expected(fake, start, end), check_exact=True)
    assert len(bars) == 4 * 1440
    # After the last candle before the hole (minute 2879), windows of 300 minutes come back
    # empty until one reaches past the hole's end (minute 4320).
    empty = [(p.attrs["start_ms"], p.attrs["end_ms"]) for p in pages if p.empty]
    assert empty == [
        (start + m * MINUTE, start + (m + 300) * MINUTE) for m in (2880, 3180, 3480, 3780)
    ]
    assert len(pages) == len(fake.candle_requests()) == 25


def test_progress_reports_every_page_and_totals_the_rows(fake: FakeCoinbase) -> None:
    fake.remove("BTC-USD", "2024-01-01 03:00", "2024-01-01 09:00")
    progress = Recorder()
    start, end = ms("2024-01-01"), ms("2024-01-01 12:00")
    pages = list(source_for(fake).fetch("BTC-USD", "1m", start, end, progress=progress))

    assert progress.calls == [len(page) for page in pages]
    assert sum(progress.calls) == 6 * 60
    assert 0 in progress.calls


@pytest.mark.parametrize(
    ("given", "cache_key", "unified"),
    [
        ("BTC-USD", "BTC-USD", "BTC/USD"),
        ("BTC/USD", "BTC-USD", "BTC/USD"),
        ("btc-usd", "BTC-USD", "BTC/USD"),
        (" eth_usdt ", "ETH-USDT", "ETH/USDT"),
        ("BTC/USD:USD", "BTC-USD:USD", "BTC/USD:USD"),
    ],
)
def test_symbol_forms_normalise(
    fake: FakeCoinbase, given: str, cache_key: str, unified: str
) -> None:
    source = source_for(fake)
    assert source.normalize_symbol(given) == cache_key
    assert source.ccxt_symbol(given) == unified
    assert source.asset_class(given) == "crypto"


@pytest.mark.parametrize("bad", ["BTCUSD", "BTC--USD", "", "BTC/USD/EUR"])
def test_symbols_without_base_and_quote_are_refused(fake: FakeCoinbase, bad: str) -> None:
    with pytest.raises(DataValidationError, match="must name a base and a quote"):
        source_for(fake).normalize_symbol(bad)


def test_lower_case_symbol_reaches_the_venue_as_its_product_id(fake: FakeCoinbase) -> None:
    bars = fetch_all(source_for(fake), "btc-usd", ms("2024-01-05"), ms("2024-01-05 00:10"))
    assert len(bars) == 10
    assert fake.seen[0].path == "/api/v3/brokerage/market/products/BTC-USD/candles"


@pytest.mark.parametrize("timeframe", ["4h", "2m"])
def test_timeframes_coinbase_lacks_are_refused_naming_the_allowed_ones(
    fake: FakeCoinbase, timeframe: str
) -> None:
    with pytest.raises(DataValidationError) as caught:
        source_for(fake).fetch("BTC-USD", timeframe, ms("2024-01-05"), ms("2024-01-06"))
    assert str(caught.value) == (
        f"coinbase: timeframe {timeframe!r} is not offered; choose one of 1m, 5m, 15m, 1h, 1d"
    )
    assert fake.seen == []


def test_hourly_candles_use_the_venue_granularity(fake: FakeCoinbase) -> None:
    start, end = ms("2024-01-01"), ms("2024-02-01")
    bars = pd.concat(list(source_for(fake).fetch("ETH-USD", "1h", start, end)), ignore_index=True)
    series = fake.series("ETH-USD", "ONE_HOUR")
    want = series[(series["ts"] >= start) & (series["ts"] < end)].reset_index(drop=True)
    pd.testing.assert_frame_equal(bars, want, check_exact=True)
    assert [q["granularity"] for q in fake.candle_requests()] == ["ONE_HOUR"] * 3


def test_venue_errors_5xx_are_retried_then_served(fake: FakeCoinbase) -> None:
    sleeps = Recorder()
    fake.fail_next(2, status=503)
    bars = fetch_all(source_for(fake, sleeps), "BTC-USD", ms("2024-01-05"), ms("2024-01-05 01:00"))
    assert len(bars) == 60
    assert sleeps.calls == [1.0, 2.0]


def test_unreachable_venue_raises_exchange_unavailable_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sleeps = Recorder()
    exchange = coinbase_exchange(f"http://127.0.0.1:{closed_port}")
    source = CcxtSource(exchange=exchange, sleep=sleeps, max_retries=2, now_ms=lambda: NOW)

    with pytest.raises(ExchangeUnavailableError, match="gave up after 2 retries"):
        list(source.fetch("BTC-USD", "1m", ms("2024-01-05"), ms("2024-01-06")))
    assert sleeps.calls == [1.0, 2.0]


def test_a_smaller_page_limit_takes_more_calls(fake: FakeCoinbase) -> None:
    start, end = ms("2024-01-05"), ms("2024-01-05 05:00")
    bars = fetch_all(source_for(fake, page_limit=100), "BTC-USD", start, end)
    assert len(bars) == 300
    assert len(fake.candle_requests()) == 3


def test_page_limit_comes_from_exchange_features() -> None:
    exchange = SimpleNamespace(
        features={
            "spot": {"fetchOHLCV": {"limit": 1000}},
            "swap": {"linear": {"fetchOHLCV": {"limit": 1500}}, "inverse": None},
        }
    )
    assert ohlcv_page_limit(exchange, {"type": "spot"}) == 1000
    linear_swap = {"type": "swap", "contract": True, "linear": True}
    assert ohlcv_page_limit(exchange, linear_swap) == 1500
    inverse_swap = {"type": "swap", "contract": True, "linear": False}
    assert ohlcv_page_limit(exchange, inverse_swap) == 300
    assert ohlcv_page_limit(exchange, {"type": "future"}) == 300


def test_empty_and_reversed_ranges(fake: FakeCoinbase) -> None:
    source = source_for(fake)
    assert list(source.fetch("BTC-USD", "1m", ms("2024-01-05"), ms("2024-01-05"))) == []
    with pytest.raises(DataValidationError, match="is after end"):
        source.fetch("BTC-USD", "1m", ms("2024-01-06"), ms("2024-01-05"))
    assert fake.seen == []


def test_a_source_built_by_id_uses_ccxts_own_rate_limiter() -> None:
    source = CcxtSource("coinbase")
    assert source.venue == "coinbase"
    assert source.exchange.enableRateLimit is True
