"""AlpacaSource through alpaca-py's real data clients against a fake Alpaca server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fakes.fake_alpaca import FakeAlpaca

from tradetower.errors import (
    AuthenticationError,
    DataValidationError,
    ExchangeUnavailableError,
    RateLimitedError,
)
from tradetower.history.alpaca_source import AlpacaSource
from tradetower.history.source import PAGE_COLUMNS

MINUTE = 60_000
NOW = int(pd.Timestamp("2024-03-10", tz="UTC").value // 1_000_000)


def ms(when: str) -> int:
    return int(pd.Timestamp(when, tz="UTC").value // 1_000_000)


class Recorder:
    """Stands in for ``time.sleep`` and for progress callbacks: remembers every call."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, value: Any) -> None:
        self.calls.append(value)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAlpaca]:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with FakeAlpaca() as server:
        yield server


def source_for(
    fake: FakeAlpaca,
    sleeps: Callable[[float], None] | None = None,
    *,
    keys: tuple[str | None, str | None] = ("key-id", "secret-key"),
    now: int = NOW,
    **options: Any,
) -> AlpacaSource:
    options.setdefault("min_interval_s", 0.0)
    return AlpacaSource(
        *keys,
        url_override=fake.url,
        sleep=sleeps if sleeps is not None else Recorder(),
        now_ms=lambda: now,
        **options,
    )


def expected(fake: FakeAlpaca, symbol: str, start: int, end: int, tf: str = "1Min") -> pd.DataFrame:
    series = fake.series(symbol, tf)
    return series[(series["ts"] >= start) & (series["ts"] < end)].reset_index(drop=True)


def fetch_all(
    source: AlpacaSource, symbol: str, start: int, end: int, tf: str = "1m"
) -> pd.DataFrame:
    return pd.concat(list(source.fetch(symbol, tf, start, end)), ignore_index=True)


def test_two_months_of_stock_minutes_come_back_complete_and_exact(fake: FakeAlpaca) -> None:
    start, end = ms("2024-01-01"), ms("2024-03-01")
    pages = list(source_for(fake).fetch("AAPL", "1m", start, end))

    bars = pd.concat(pages, ignore_index=True)
    pd.testing.assert_frame_equal(bars, expected(fake, "AAPL", start, end), check_exact=True)
    assert len(bars) == 44 * 390  # 44 weekdays, 390 regular-session minutes each
    assert bars["ts"].is_monotonic_increasing and bars["ts"].is_unique
    assert list(bars.columns) == list(PAGE_COLUMNS)
    assert bars.dtypes.tolist() == [np.int64] + [np.float64] * 5
    # Windows of 10,000 minutes: 60 days take 9 windows, one request each.
    requests = fake.bar_requests()
    assert len(pages) == len(requests) == 9
    assert requests[0] == {
        "symbols": "AAPL",
        "timeframe": "1Min",
        "start": "2024-01-01T00:00:00+00:00",
        "end": "2024-01-07T22:39:59+00:00",
        "feed": "iex",
        "adjustment": "split",
        "limit": "10000",
    }


def test_stock_window_larger_than_a_page_follows_next_page_token(fake: FakeAlpaca) -> None:
    start, end = ms("2024-01-01"), ms("2024-03-01")
    source = source_for(fake, window_bars=100_000)
    bars = fetch_all(source, "AAPL", start, end)

    pd.testing.assert_frame_equal(bars, expected(fake, "AAPL", start, end), check_exact=True)
    requests = fake.bar_requests()
    assert len(requests) == 2
    assert "page_token" not in requests[0] and requests[1]["page_token"]


def test_crypto_needs_no_keys_and_pages_by_token(fake: FakeAlpaca) -> None:
    start, end = ms("2024-01-01"), ms("2024-01-08 00:20")  # 10,100 minutes in one window
    source = source_for(fake, keys=(None, None), window_bars=20_000)
    bars = fetch_all(source, "btc-usd", start, end)

    pd.testing.assert_frame_equal(bars, expected(fake, "BTC/USD", start, end), check_exact=True)
    assert len(bars) == 10_100
    requests = fake.bar_requests()
    assert [r["symbols"] for r in requests] == ["BTC/USD", "BTC/USD"]
    assert "page_token" in requests[1]
    assert all("APCA-API-KEY-ID" not in seen.headers for seen in fake.seen)


def test_stock_daily_bars_open_at_new_york_midnight(fake: FakeAlpaca) -> None:
    bars = fetch_all(source_for(fake), "MSFT", ms("2024-01-01"), ms("2024-01-08"), tf="1d")
    opens = pd.to_datetime(bars["ts"], unit="ms", utc=True)
    assert opens.dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        f"2024-01-0{day} 05:00" for day in (1, 2, 3, 4, 5)
    ]
    pd.testing.assert_frame_equal(
        bars, expected(fake, "MSFT", ms("2024-01-01"), ms("2024-01-08"), "1Day"), check_exact=True
    )


def test_the_bar_still_forming_is_dropped(fake: FakeAlpaca) -> None:
    now = ms("2024-02-01 12:00:30")
    bars = fetch_all(
        source_for(fake, keys=(None, None), now=now),
        "BTC/USD",
        ms("2024-02-01 11:50"),
        ms("2024-02-01 13:00"),
    )
    assert ms("2024-02-01 12:00") in set(fake.series("BTC/USD")["ts"])
    assert bars["ts"].tolist() == [ms("2024-02-01 11:50") + i * MINUTE for i in range(10)]


def test_rate_limited_twice_then_served_retries_with_exact_backoff(fake: FakeAlpaca) -> None:
    sleeps = Recorder()
    fake.fail_next(2, status=429)
    start, end = ms("2024-01-02"), ms("2024-01-03")

    bars = fetch_all(source_for(fake, sleeps), "AAPL", start, end)

    pd.testing.assert_frame_equal(bars, expected(fake, "AAPL", start, end), check_exact=True)
    assert sleeps.calls == [1.0, 2.0]
    assert len(fake.bar_requests()) == 3


def test_rate_limited_for_ever_gives_up_after_max_retries(fake: FakeAlpaca) -> None:
    sleeps = Recorder()
    fake.fail_next(100, status=429)
    source = source_for(fake, sleeps, max_retries=2, backoff_s=0.25)

    with pytest.raises(RateLimitedError, match=r"\[alpaca\] rate limited \(HTTP 429\)"):
        list(source.fetch("AAPL", "1m", ms("2024-01-02"), ms("2024-01-03")))
    assert sleeps.calls == [0.25, 0.5]
    assert len(fake.bar_requests()) == 3


def test_server_errors_are_retried_then_reported_unavailable(fake: FakeAlpaca) -> None:
    sleeps = Recorder()
    fake.fail_next(100, status=500)
    source = source_for(fake, sleeps, max_retries=1)

    with pytest.raises(ExchangeUnavailableError, match="HTTP 500"):
        list(source.fetch("AAPL", "1m", ms("2024-01-02"), ms("2024-01-03")))
    assert sleeps.calls == [1.0]
    assert len(fake.bar_requests()) == 2


def test_refused_keys_raise_authentication_error_without_retrying(fake: FakeAlpaca) -> None:
    sleeps = Recorder()
    source = source_for(fake, sleeps, keys=("key-id", "wrong"))
    with pytest.raises(AuthenticationError, match=r"HTTP 401\): request is not authorized"):
        list(source.fetch("AAPL", "1m", ms("2024-01-02"), ms("2024-01-03")))
    assert sleeps.calls == []
    assert len(fake.bar_requests()) == 1


def test_stocks_without_keys_are_refused_before_any_request(fake: FakeAlpaca) -> None:
    source = source_for(fake, keys=(None, None))
    with pytest.raises(AuthenticationError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        source.fetch("AAPL", "1m", ms("2024-01-02"), ms("2024-01-03"))
    assert fake.seen == []


def test_keys_come_from_the_environment(fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "key-id")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "secret-key")
    bars = fetch_all(
        source_for(fake, keys=(None, None)), "AAPL", ms("2024-01-02"), ms("2024-01-03")
    )
    assert len(bars) == 390
    assert fake.seen[0].headers["APCA-API-KEY-ID"] == "key-id"


def test_unknown_symbol_is_named(fake: FakeAlpaca) -> None:
    with pytest.raises(DataValidationError) as caught:
        list(source_for(fake).fetch("zzzz", "1m", ms("2024-01-02"), ms("2024-01-03")))
    assert str(caught.value) == "alpaca: unknown symbol 'ZZZZ' (invalid symbol: ZZZZ)"


def test_a_weekend_yields_empty_pages_and_terminates(fake: FakeAlpaca) -> None:
    start, end = ms("2024-01-06"), ms("2024-01-08")  # Saturday and Sunday
    pages = list(source_for(fake, window_bars=1440).fetch("AAPL", "1m", start, end))
    assert [(p.attrs["start_ms"], p.attrs["end_ms"], len(p)) for p in pages] == [
        (start, ms("2024-01-07"), 0),
        (ms("2024-01-07"), end, 0),
    ]


def test_progress_reports_every_window_and_totals_the_rows(fake: FakeAlpaca) -> None:
    progress = Recorder()
    source = source_for(fake, window_bars=1440)
    pages = list(source.fetch("AAPL", "1m", ms("2024-01-05"), ms("2024-01-09"), progress=progress))
    assert progress.calls == [len(page) for page in pages] == [390, 0, 0, 390]


def test_requests_are_paced_to_the_venue_limit(fake: FakeAlpaca) -> None:
    clock = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    source = source_for(fake, sleep, window_bars=1440, min_interval_s=0.5, clock=lambda: clock[0])
    list(source.fetch("AAPL", "1m", ms("2024-01-02"), ms("2024-01-05")))
    assert len(fake.bar_requests()) == 3
    assert sleeps == [0.5, 0.5]


def test_feed_and_adjustment_reach_the_venue(fake: FakeAlpaca) -> None:
    source = source_for(fake, feed="sip", adjustment="raw")
    list(source.fetch("AAPL", "1h", ms("2024-01-02"), ms("2024-01-03")))
    request = fake.bar_requests()[0]
    assert (request["feed"], request["adjustment"], request["timeframe"]) == ("sip", "raw", "1Hour")


def test_bad_feed_is_refused_with_the_choices(fake: FakeAlpaca) -> None:
    with pytest.raises(DataValidationError, match="feed 'nyse' is not one of iex, sip"):
        source_for(fake, feed="nyse")


def test_unknown_timeframe_names_the_allowed_ones(fake: FakeAlpaca) -> None:
    with pytest.raises(DataValidationError) as caught:
        source_for(fake).fetch("AAPL", "2m", ms("2024-01-02"), ms("2024-01-03"))
    assert str(caught.value) == (
        "alpaca: timeframe '2m' is not offered; choose one of 1m, 5m, 15m, 1h, 4h, 1d"
    )


@pytest.mark.parametrize(
    ("given", "cache_key", "venue_symbol", "asset_class"),
    [
        ("AAPL", "AAPL", "AAPL", "equity"),
        (" aapl ", "AAPL", "AAPL", "equity"),
        ("BRK.B", "BRK.B", "BRK.B", "equity"),
        ("brk/b", "BRK.B", "BRK.B", "equity"),
        ("BRK-B", "BRK.B", "BRK.B", "equity"),
        ("BTC/USD", "BTC-USD", "BTC/USD", "crypto"),
        ("btc-usd", "BTC-USD", "BTC/USD", "crypto"),
        ("ETH/USDT", "ETH-USDT", "ETH/USDT", "crypto"),
        ("sol-usdc", "SOL-USDC", "SOL/USDC", "crypto"),
        ("ETH/BTC", "ETH-BTC", "ETH/BTC", "crypto"),
    ],
)
def test_symbol_forms_normalise(
    fake: FakeAlpaca, given: str, cache_key: str, venue_symbol: str, asset_class: str
) -> None:
    source = source_for(fake)
    assert source.normalize_symbol(given) == cache_key
    assert source.alpaca_symbol(given) == venue_symbol
    assert source.asset_class(given) == asset_class


@pytest.mark.parametrize("bad", ["AAPL!", "", "A..B"])
def test_malformed_symbols_are_refused(fake: FakeAlpaca, bad: str) -> None:
    with pytest.raises(DataValidationError, match="is not a stock ticker or crypto pair"):
        source_for(fake).normalize_symbol(bad)
