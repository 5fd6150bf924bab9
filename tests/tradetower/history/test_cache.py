"""The history cache on a local folder, driven by the in-memory source."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from memory_source import DAY, MINUTE, T0, MemorySource, source_factory, synthetic_bars

from tradetower import history
from tradetower.errors import DataValidationError, ExchangeUnavailableError
from tradetower.history.cache import CacheMissError, HistoryCache
from tradetower.history.catalog import Gap
from tradetower.history.layout import SeriesKey
from tradetower.history.store import LocalStore

FEB = 1_706_745_600_000
MAR = 1_709_251_200_000
KEY = SeriesKey("memex", "crypto", "BTC-USD", "1m")


def frame_of(bars: pd.DataFrame) -> pd.DataFrame:
    """Source bars as load() returns them."""
    index = pd.DatetimeIndex(pd.to_datetime(bars["ts"], unit="ms", utc=True), name="timestamp")
    return pd.DataFrame(
        {c: bars[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}, index=index
    )


def between(bars: pd.DataFrame, a: int, b: int) -> pd.DataFrame:
    return bars[(bars["ts"] >= a) & (bars["ts"] < b)].reset_index(drop=True)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "cache")


def test_month_files_land_at_the_spec_paths_as_zstd_parquet(store: LocalStore) -> None:
    bars = synthetic_bars(T0, MAR)
    cache = HistoryCache(store)
    cache.fetch(MemorySource(bars, page_bars=5000), "btc/usd", "1m", "2024-01-01", "2024-03-01")
    assert store.list() == [
        "memex/crypto/BTC-USD/1m/2024-01.parquet",
        "memex/crypto/BTC-USD/1m/2024-02.parquet",
        "memex/crypto/BTC-USD/1m/_catalog.json",
    ]
    found = store.get("memex/crypto/BTC-USD/1m/2024-02.parquet")
    assert found is not None
    parquet = pq.ParquetFile(io.BytesIO(found.data))
    assert parquet.schema_arrow.names == ["ts", "open", "high", "low", "close", "volume"]
    assert str(parquet.schema_arrow.field("ts").type) == "int64"
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    table = parquet.read().to_pandas()
    pd.testing.assert_frame_equal(table, between(bars, FEB, MAR))


@pytest.mark.parametrize(
    ("timeframe", "step", "files"),
    [("1h", 3_600_000, ["2023.parquet", "2024.parquet"]), ("1d", DAY, ["all.parquet"])],
)
def test_hour_files_are_yearly_and_day_files_one(
    store: LocalStore, timeframe: str, step: int, files: list[str]
) -> None:
    start = T0 - 10 * DAY
    bars = synthetic_bars(start, T0 + 10 * DAY, step_ms=step)
    source = MemorySource(bars, timeframe=timeframe, page_bars=100)
    HistoryCache(store).fetch(source, "BTC-USD", timeframe, start, T0 + 10 * DAY, progress=False)
    folder = f"memex/crypto/BTC-USD/{timeframe}/"
    assert store.list(folder) == sorted(folder + f for f in [*files, "_catalog.json"])


def test_second_fetch_makes_no_source_call(store: LocalStore) -> None:
    source = MemorySource(synthetic_bars(T0, T0 + 5 * DAY))
    cache = HistoryCache(store)
    first = cache.fetch(source, "BTC-USD", "1m", T0, T0 + 5 * DAY, progress=False)
    second = cache.fetch(source, "BTC-USD", "1m", T0, T0 + 5 * DAY, progress=False)
    assert (first.bars, len(source.calls)) == (5 * 1440, 1)
    assert (second.planned, second.bars) == ([], 0)
    assert len(source.calls) == 1


def test_partial_overlap_fetches_exactly_the_missing_intervals(store: LocalStore) -> None:
    bars = synthetic_bars(T0, T0 + 20 * DAY)
    source = MemorySource(bars)
    cache = HistoryCache(store)
    cache.fetch(source, "BTC-USD", "1m", T0 + 5 * DAY, T0 + 10 * DAY, progress=False)
    cache.fetch(source, "BTC-USD", "1m", T0 + 8 * DAY, T0 + 12 * DAY, progress=False)
    cache.fetch(source, "BTC-USD", "1m", T0, T0 + 20 * DAY, progress=False)
    assert source.calls == [
        ("BTC-USD", "1m", T0 + 5 * DAY, T0 + 10 * DAY),
        ("BTC-USD", "1m", T0 + 10 * DAY, T0 + 12 * DAY),
        ("BTC-USD", "1m", T0, T0 + 5 * DAY),
        ("BTC-USD", "1m", T0 + 12 * DAY, T0 + 20 * DAY),
    ]
    loaded = cache.load("memex", "BTC-USD", "1m", T0, T0 + 20 * DAY, offline=True)
    pd.testing.assert_frame_equal(loaded, frame_of(bars))


def test_an_interrupted_fetch_resumes_from_the_last_written_month(store: LocalStore) -> None:
    bars = synthetic_bars(T0, MAR)
    source = MemorySource(bars, page_bars=5000)  # a page spans about 3.5 days
    source.fail_after_pages = 12  # fails in mid-February
    cache = HistoryCache(store)
    with pytest.raises(ExchangeUnavailableError, match="connection reset"):
        cache.fetch(source, "BTC-USD", "1m", T0, MAR, progress=False)
    entry = cache.catalog(KEY)
    assert entry is not None
    assert (entry.status, entry.ranges, sorted(entry.files)) == ("ERROR", [(T0, FEB)], ["2024-01"])
    assert "connection reset" in entry.error

    report = cache.fetch(source, "BTC-USD", "1m", T0, MAR, progress=False)
    assert source.calls[-1] == ("BTC-USD", "1m", FEB, MAR)
    assert report.bars == len(between(bars, FEB, MAR))
    entry = cache.catalog(KEY)
    assert entry is not None
    assert (entry.status, entry.ranges, entry.total_candles) == (
        "AVAILABLE",
        [(T0, MAR)],
        len(bars),
    )
    loaded = cache.load("memex", "BTC-USD", "1m", T0, MAR, offline=True)
    pd.testing.assert_frame_equal(loaded, frame_of(bars))


def test_an_empty_stretch_is_a_known_gap_and_never_asked_again(store: LocalStore) -> None:
    downtime = (T0 + 9 * DAY, T0 + 12 * DAY)
    across_months = (FEB - 2 * DAY, FEB + 2 * DAY)
    short = (T0 + 20 * DAY, T0 + 20 * DAY + 120 * MINUTE)  # two hours: a hole, not "empty"
    bars = synthetic_bars(T0, MAR, skip=(downtime, across_months, short))
    source = MemorySource(bars, page_bars=5000)
    cache = HistoryCache(store)
    report = cache.fetch(source, "BTC-USD", "1m", T0, MAR, progress=False)
    assert report.empty == [downtime, across_months]
    entry = cache.catalog(KEY)
    assert entry is not None
    assert entry.empty_ranges == [downtime, across_months]
    assert entry.ranges == [
        (T0, downtime[0]),
        (downtime[1], across_months[0]),
        (FEB + 2 * DAY, MAR),
    ]
    assert entry.data_quality == [
        Gap(*downtime, "no bars for 3.0 days"),
        Gap(*across_months, "no bars for 4.0 days"),
    ]
    calls = len(source.calls)
    cache.fetch(source, "BTC-USD", "1m", downtime[0] - DAY, downtime[1] + DAY, progress=False)
    assert len(source.calls) == calls
    loaded = cache.load("memex", "BTC-USD", "1m", T0, MAR, offline=True)
    assert len(loaded) == len(bars)  # the holes stay holes: no invented bars


def test_a_window_with_no_bars_at_all_is_recorded_empty(store: LocalStore) -> None:
    source = MemorySource(synthetic_bars(T0, T0 + DAY))
    cache = HistoryCache(store)
    report = cache.fetch(source, "BTC-USD", "1m", T0 - 3600_000, T0, progress=False)
    assert (report.bars, report.empty) == (0, [(T0 - 3600_000, T0)])
    cache.fetch(source, "BTC-USD", "1m", T0 - 3600_000, T0, progress=False)
    assert len(source.calls) == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"open": 1000.0},
            "memex BTC-USD 1m: row 5 \\(2024-01-01 00:05:00\\+00:00\\): open above high",
        ),
        (
            {"close": 1.0},
            "memex BTC-USD 1m: row 5 \\(2024-01-01 00:05:00\\+00:00\\): close below low",
        ),
        (
            {"volume": -1.0},
            "memex BTC-USD 1m: row 5 \\(2024-01-01 00:05:00\\+00:00\\): negative volume",
        ),
        (
            {"close": float("nan")},
            "memex BTC-USD 1m: row 5 \\(2024-01-01 00:05:00\\+00:00\\): close is not a finite",
        ),
    ],
)
def test_a_bad_batch_is_refused_naming_venue_symbol_and_time_and_nothing_is_written(
    store: LocalStore, override: dict[str, float], message: str
) -> None:
    source = MemorySource(synthetic_bars(T0, T0 + 2 * DAY))
    source.bad_rows = {T0 + 5 * MINUTE: override}
    cache = HistoryCache(store)
    with pytest.raises(DataValidationError, match=message):
        cache.fetch(source, "BTC-USD", "1m", T0, T0 + 2 * DAY, progress=False)
    assert [k for k in store.list() if k.endswith(".parquet")] == []
    entry = cache.catalog(KEY)
    assert entry is not None
    assert (entry.status, entry.ranges) == ("ERROR", [])


def test_a_page_overlapping_the_previous_one_is_refused(store: LocalStore) -> None:
    class Repeating(MemorySource):
        def fetch(self, symbol, timeframe, start_ms, end_ms, *, progress=None):  # type: ignore[no-untyped-def]
            page = self.bars.iloc[:10]
            yield page
            yield page

    cache = HistoryCache(store)
    with pytest.raises(DataValidationError, match="memex BTC-USD 1m: bar at 2024-01-01 repeats"):
        cache.fetch(Repeating(synthetic_bars(T0, T0 + DAY)), "BTC-USD", "1m", T0, T0 + DAY)


def test_offline_load_names_the_missing_intervals_and_calls_nothing(store: LocalStore) -> None:
    source = MemorySource(synthetic_bars(T0, MAR))
    cache = HistoryCache(store, source_factory=source_factory(source))
    cache.fetch(source, "BTC-USD", "1m", T0, T0 + 10 * DAY, progress=False)
    with pytest.raises(CacheMissError, match="lacks memex BTC-USD 1m for 2024-01-11 → 2024-02-01"):
        cache.load("memex", "BTC-USD", "1m", T0, FEB, offline=True)
    with pytest.raises(CacheMissError, match="for 2024-01-01 → 2024-02-01"):
        cache.load("memex", "ETH-USD", "1m", T0, FEB, offline=True)
    assert len(source.calls) == 1


def test_load_fetches_only_what_is_missing_through_the_source_factory(store: LocalStore) -> None:
    bars = synthetic_bars(T0, MAR)
    source = MemorySource(bars, page_bars=5000)
    cache = HistoryCache(store, source_factory=source_factory(source))
    cache.fetch(source, "BTC-USD", "1m", T0, FEB, progress=False)
    loaded = cache.load("memex", "btc/usd", "1m", "2024-01-15", "2024-03-01")
    assert source.calls[-1] == ("BTC-USD", "1m", FEB, MAR)
    pd.testing.assert_frame_equal(loaded, frame_of(between(bars, T0 + 14 * DAY, MAR)))


def test_load_serves_a_coarser_timeframe_by_resampling_the_finest_held(store: LocalStore) -> None:
    bars = synthetic_bars(T0, T0 + 2 * DAY)
    source = MemorySource(bars)
    cache = HistoryCache(store)
    cache.fetch(source, "BTC-USD", "1m", T0, T0 + 2 * DAY, progress=False)
    hourly = cache.load("memex", "BTC-USD", "1h", T0, T0 + 2 * DAY, offline=True)
    first_hour = between(bars, T0, T0 + 3_600_000)
    assert len(hourly) == 48
    assert hourly.index[1] == pd.Timestamp("2024-01-01 01:00", tz="UTC")
    assert hourly.iloc[0].to_dict() == {
        "open": first_hour["open"].iloc[0],
        "high": first_hour["high"].max(),
        "low": first_hour["low"].min(),
        "close": first_hour["close"].iloc[-1],
        "volume": pytest.approx(first_hour["volume"].sum(), rel=1e-12),
    }
    assert len(source.calls) == 1


def test_load_market_gives_the_engine_the_same_bars(store: LocalStore) -> None:
    bars = synthetic_bars(T0, T0 + DAY)
    cache = HistoryCache(store)
    cache.fetch(MemorySource(bars), "BTC-USD", "1m", T0, T0 + DAY, progress=False)
    market = cache.load_market("memex", "BTC/USD", "1m", T0, T0 + DAY, offline=True)
    assert market.symbols == ("BTC/USD",)
    np.testing.assert_array_equal(market.time_ms, bars["ts"].to_numpy())
    np.testing.assert_array_equal(market.ohlcv[:, 0, 3], bars["close"].to_numpy())


def test_the_future_is_never_recorded_as_fetched(store: LocalStore) -> None:
    now = T0 + 10 * DAY + 30_000  # half a minute into a candle that is still forming
    source = MemorySource(synthetic_bars(T0, T0 + 10 * DAY))
    cache = HistoryCache(store, clock=lambda: now / 1000)
    cache.fetch(source, "BTC-USD", "1m", T0, T0 + 20 * DAY, progress=False)
    assert source.calls == [("BTC-USD", "1m", T0, T0 + 10 * DAY)]
    entry = cache.catalog(KEY)
    assert entry is not None
    assert entry.ranges == [(T0, T0 + 10 * DAY)]


def test_import_then_fetch_asks_only_for_the_rest(store: LocalStore, tmp_path: Path) -> None:
    bars = synthetic_bars(T0, T0 + 4 * DAY)
    csv = tmp_path / "mine.csv"
    frame_of(between(bars, T0, T0 + 2 * DAY)).to_csv(csv)
    cache = HistoryCache(store)
    report = cache.import_file(csv, venue="memex", symbol="btc/usd", timeframe="1m")
    assert (report.key, report.bars) == (KEY, 2 * 1440)
    source = MemorySource(bars)
    cache.fetch(source, "BTC-USD", "1m", T0, T0 + 4 * DAY, progress=False)
    assert source.calls == [("BTC-USD", "1m", T0 + 2 * DAY, T0 + 4 * DAY)]
    loaded = cache.load("memex", "BTC-USD", "1m", T0, T0 + 4 * DAY, offline=True)
    pd.testing.assert_frame_equal(loaded, frame_of(bars), check_freq=False)


def test_import_refuses_a_file_at_another_timeframe(store: LocalStore, tmp_path: Path) -> None:
    csv = tmp_path / "five.csv"
    frame_of(synthetic_bars(T0, T0 + DAY)).to_csv(csv)
    with pytest.raises(DataValidationError, match="row 1 \\(2024-01-01 00:01\\): only 60 s after"):
        HistoryCache(store).import_file(csv, venue="memex", symbol="BTC-USD", timeframe="5m")
    assert store.list() == []


def test_entries_list_every_series(store: LocalStore) -> None:
    cache = HistoryCache(store)
    cache.fetch(MemorySource(synthetic_bars(T0, T0 + DAY)), "BTC-USD", "1m", T0, T0 + DAY)
    cache.fetch(
        MemorySource(synthetic_bars(T0, T0 + DAY), venue="other"), "ETH-USD", "1m", T0, T0 + DAY
    )
    assert [e.key.id for e in cache.entries()] == [
        "memex:crypto:BTC-USD:1m",
        "other:crypto:ETH-USD:1m",
    ]
    assert [e.total_candles for e in cache.entries()] == [1440, 1440]


def test_load_bars_is_one_call_from_a_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars = synthetic_bars(T0, T0 + DAY)
    source = MemorySource(bars)
    monkeypatch.setattr(history, "source_for", lambda venue: source)
    args = ("memex", "BTC-USD", "1m", "2024-01-01", "2024-01-02")
    frame = history.load_bars(*args, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(frame, frame_of(bars))
    again = history.load_bars(*args, offline=True, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(again, frame)
    market = history.load_market(*args, offline=True, cache_dir=tmp_path)
    assert (market.symbols, market.n_bars) == (("BTC-USD",), 1440)
    assert len(source.calls) == 1


def test_a_long_month_is_written_in_chunks_so_a_resume_loses_little(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tradetower.history.fetching.FLUSH_ROWS", 3000)
    bars = synthetic_bars(T0, T0 + 5 * DAY)
    source = MemorySource(bars, page_bars=1000)
    source.fail_after_pages = 5
    cache = HistoryCache(store)
    with pytest.raises(ExchangeUnavailableError):
        cache.fetch(source, "BTC-USD", "1m", T0, T0 + 5 * DAY, progress=False)
    entry = cache.catalog(KEY)
    assert entry is not None
    assert (entry.ranges, entry.total_candles) == ([(T0, T0 + 3000 * MINUTE)], 3000)
    cache.fetch(source, "BTC-USD", "1m", T0, T0 + 5 * DAY, progress=False)
    assert source.calls[-1] == ("BTC-USD", "1m", T0 + 3000 * MINUTE, T0 + 5 * DAY)
    loaded = cache.load("memex", "BTC-USD", "1m", T0, T0 + 5 * DAY, offline=True)
    pd.testing.assert_frame_equal(loaded, frame_of(bars))
