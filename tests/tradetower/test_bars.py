"""Reading bars from CSV and Parquet: good files load, each bad file gets one error naming the
row (or the column, or the file) that is wrong."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradetower.domain.bars import MarketData, outward_float32, read_bars, validate_bars
from tradetower.errors import DataValidationError

pytestmark = pytest.mark.nojit

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def bars(n: int = 20) -> pd.DataFrame:
    """A valid frame of 1-minute bars with a timestamp column."""
    close = 100.0 + np.arange(n, dtype=float)
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(T0, periods=n, freq="1min"),
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.full(n, 7.0),
        }
    )


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def refused(path: Path) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        read_bars(path)
    return info.value


def test_csv_loads_into_utc_indexed_float_columns(tmp_path: Path) -> None:
    out = read_bars(write_csv(tmp_path / "bars.csv", bars()))
    assert list(out.columns) == ["open", "high", "low", "close", "volume"]
    assert (out.dtypes == np.float64).all()
    assert out.index.name == "timestamp"
    assert str(out.index.tz) == "UTC"
    assert out.index[0] == T0 and out.index[-1] == T0 + pd.Timedelta(minutes=19)
    assert out["close"].tolist() == bars()["close"].tolist()


def test_parquet_loads_with_a_column_or_an_index_of_timestamps(tmp_path: Path) -> None:
    frame = bars()
    frame.to_parquet(tmp_path / "col.parquet")
    frame.set_index("timestamp").to_parquet(tmp_path / "idx.parquet")
    a = read_bars(tmp_path / "col.parquet")
    b = read_bars(tmp_path / "idx.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert a["high"].tolist() == frame["high"].tolist()
    csv = read_bars(write_csv(tmp_path / "same.csv", frame))
    np.testing.assert_array_equal(csv.to_numpy(), a.to_numpy())
    assert (csv.index == a.index).all()


def test_column_names_are_matched_without_case_and_time_aliases_accepted(tmp_path: Path) -> None:
    frame = bars().rename(columns={"timestamp": "Date", "close": "Close", "open": " OPEN "})
    out = read_bars(write_csv(tmp_path / "aliases.csv", frame))
    assert out.index[3] == T0 + pd.Timedelta(minutes=3)
    assert out["open"].iloc[0] == 99.5


def test_timestamps_with_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    frame = bars(3)
    frame["timestamp"] = ["2024-01-01T01:00:00+01:00", "2024-01-01T01:01:00+01:00", "2024-01-01"]
    frame.loc[2, "timestamp"] = "2024-01-01T00:02:00Z"
    out = read_bars(write_csv(tmp_path / "tz.csv", frame))
    assert out.index.tolist() == [T0 + pd.Timedelta(minutes=m) for m in range(3)]


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 1_000), ("us", 10**6)])
def test_integer_epoch_timestamps_in_any_unit(tmp_path: Path, unit: str, scale: int) -> None:
    frame = bars()
    seconds = np.arange(20, dtype=np.int64) * 60 + int(T0.timestamp())
    frame["timestamp"] = seconds * scale
    out = read_bars(write_csv(tmp_path / f"epoch_{unit}.csv", frame))
    assert out.index.tolist() == list(pd.date_range(T0, periods=20, freq="1min"))


def test_missing_column_is_named(tmp_path: Path) -> None:
    err = refused(write_csv(tmp_path / "novol.csv", bars().drop(columns=["volume"])))
    assert err.column == "volume"
    assert "novol.csv" in str(err) and "missing column(s) volume" in str(err)


def test_nan_names_its_row_and_time(tmp_path: Path) -> None:
    frame = bars()
    frame.loc[5, "close"] = np.nan
    err = refused(write_csv(tmp_path / "nan.csv", frame))
    assert (err.row, err.column) == (5, "close")
    assert str(err) == (
        f"{tmp_path / 'nan.csv'}: row 5 (2024-01-01 00:05:00+00:00): close is not a finite "
        "number (nan)"
    )


def test_text_in_a_price_column_names_its_row(tmp_path: Path) -> None:
    frame = bars().astype({"high": object})
    frame.loc[9, "high"] = "high!"
    err = refused(write_csv(tmp_path / "text.csv", frame))
    assert (err.row, err.column) == (9, "high")
    assert "row 9 (2024-01-01 00:09:00+00:00): high is not a finite number ('high!')" in str(err)


def test_infinity_names_its_row(tmp_path: Path) -> None:
    frame = bars()
    frame.loc[2, "open"] = np.inf
    frame.to_parquet(tmp_path / "inf.parquet")
    err = refused(tmp_path / "inf.parquet")
    assert str(err).endswith("row 2 (2024-01-01 00:02:00+00:00): open is not a finite number (inf)")


def test_missing_timestamp_names_its_row(tmp_path: Path) -> None:
    frame = bars().astype({"timestamp": str})
    frame.loc[4, "timestamp"] = ""
    err = refused(write_csv(tmp_path / "nots.csv", frame))
    assert err.row == 4 and "row 4: timestamp is missing" in str(err)


@pytest.mark.parametrize("row", [0, 5, 19])
@pytest.mark.parametrize("bad_close", [False, True])
def test_nat_in_a_datetime_column_is_named_before_other_faults(row: int, bad_close: bool) -> None:
    """NaT is found by the order check's pass (at row 0 by itself), and named before a
    bad price at an earlier row, as when it was looked for first."""
    frame = bars()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame.loc[row, "timestamp"] = pd.NaT
    if bad_close:
        frame.loc[(row + 3) % len(frame), "close"] = np.nan
    with pytest.raises(DataValidationError) as info:
        validate_bars(frame)
    assert info.value.row == row and f"row {row}: timestamp is missing" in str(info.value)


def test_unparseable_timestamp_names_its_row(tmp_path: Path) -> None:
    frame = bars().astype({"timestamp": str})
    frame.loc[6, "timestamp"] = "yesterday-ish"
    err = refused(write_csv(tmp_path / "badts.csv", frame))
    assert (err.row, err.column) == (6, "timestamp")
    assert "row 6: timestamp cannot be parsed ('yesterday-ish')" in str(err)


def test_unsorted_timestamps_name_the_first_row_out_of_order(tmp_path: Path) -> None:
    frame = bars()
    frame.loc[[7, 8], "timestamp"] = frame.loc[[8, 7], "timestamp"].to_numpy()
    err = refused(write_csv(tmp_path / "unsorted.csv", frame))
    assert err.row == 8
    assert "row 8 (2024-01-01 00:07:00+00:00): timestamps not sorted ascending" in str(err)


def test_duplicate_timestamps_name_the_repeat(tmp_path: Path) -> None:
    frame = bars()
    frame.loc[12, "timestamp"] = frame.loc[11, "timestamp"]
    err = refused(write_csv(tmp_path / "dup.csv", frame))
    assert err.row == 12
    assert "row 12 (2024-01-01 00:11:00+00:00): duplicate timestamp" in str(err)


def test_high_below_low_reads_as_the_readme_says(tmp_path: Path) -> None:
    frame = bars()
    frame.loc[17, ["high", "low"]] = [90.0, 95.0]
    path = write_csv(tmp_path / "bars.csv", frame)
    err = refused(path)
    assert (err.row, err.column) == (17, "high")
    assert str(err).startswith(f"{path}: row 17 (2024-01-01 00:17:00+00:00): high < low (")


@pytest.mark.parametrize(
    ("column", "value", "what"),
    [
        ("open", 200.0, "open above high"),
        ("close", 1.0, "close below low"),
        ("volume", -1.0, "negative volume"),
    ],
)
def test_inconsistent_bar_names_its_row(
    tmp_path: Path, column: str, value: float, what: str
) -> None:
    frame = bars()
    frame.loc[3, column] = value
    err = refused(write_csv(tmp_path / "bad.csv", frame))
    assert err.row == 3 and f"row 3 (2024-01-01 00:03:00+00:00): {what}" in str(err)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"this is not parquet")
    err = refused(path)
    assert str(err).startswith(f"{path}: cannot be read (")
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\x00\xff\xfe\x01")
    assert str(refused(path)).startswith(f"{path}: cannot be read (")


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bars.json"
    path.write_text("{}")
    assert str(refused(path)) == f"{path}: unknown format '.json' (use .parquet or .csv)"
    missing = tmp_path / "nowhere.csv"
    assert str(refused(missing)) == f"{missing}: no such file"


def test_a_file_with_a_header_only_holds_no_bars(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("timestamp,open,high,low,close,volume\n")
    assert str(refused(path)) == f"{path}: the file holds no bars"


def test_validate_bars_checks_frames_given_in_memory() -> None:
    frame = bars().set_index("timestamp")
    frame.loc[frame.index[1], "low"] = 1e9
    with pytest.raises(DataValidationError, match=r"^row 1 \(2024-01-01 00:01:00\+00:00\): high"):
        validate_bars(frame)


def test_market_data_aligns_symbols_on_one_timeline_with_nan_for_missing_bars() -> None:
    a = bars(4).set_index("timestamp")
    b = bars(4).set_index("timestamp").iloc[[0, 3]]
    data = MarketData.coerce({"A": a, "B": b})
    assert data.symbols == ("A", "B")
    assert data.n_bars == 4
    assert np.isnan(data.ohlcv[1:3, 1, :]).all()
    assert data.ohlcv[3, 1, 3] == 103.0
    assert data.time_ms.tolist() == [int(T0.timestamp() * 1000) + 60_000 * i for i in range(4)]


@pytest.mark.parametrize("gap", [0, 1, 63, 64, 65, 700, 4_999])
def test_last_close_skips_missing_bars_at_the_end(gap: int) -> None:
    """Instrument 1 lacks its last ``gap`` bars (NaN): its last close is the one before them."""
    n = 5_000
    ohlcv = np.ones((n, 2, 5))
    ohlcv[:, :, 3] = np.arange(n, dtype=float)[:, None]
    if gap:
        ohlcv[n - gap :, 1, :] = np.nan
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    market = MarketData(("A", "B"), index, ohlcv)
    assert market.last_close(0) == n - 1
    assert market.last_close(1) == n - 1 - gap


def test_last_close_of_an_instrument_without_bars_is_none() -> None:
    index = pd.date_range("2024-01-01", periods=3, freq="1min", tz="UTC")
    market = MarketData(("A",), index, np.full((3, 1, 5), np.nan))
    assert market.last_close() is None


@settings(deadline=None)  # the first example loads the compiled function
@given(st.lists(st.floats(min_value=1e-30, max_value=1e30), min_size=1, max_size=50))
def test_outward_float32_never_narrows_a_bar(values: list[float]) -> None:
    """Lows round down and highs round up, each to the nearest float32 on that side."""
    wide = np.asarray(values, dtype=np.float64)
    lows = outward_float32(wide, down=True).astype(np.float64)
    highs = outward_float32(wide, down=False).astype(np.float64)
    assert (lows <= wide).all() and (highs >= wide).all()
    up_one = np.nextafter(lows.astype(np.float32), np.float32(np.inf)).astype(np.float64)
    down_one = np.nextafter(highs.astype(np.float32), np.float32(-np.inf)).astype(np.float64)
    assert (up_one > wide).all() and (down_one < wide).all()  # nothing tighter on that side


def test_outward_float32_keeps_missing_bars_missing() -> None:
    out = outward_float32(np.array([1.5, np.nan, 0.1]), down=True)
    assert out.dtype == np.float32 and np.isnan(out[1]) and out[0] == 1.5
    assert float(out[2]) <= 0.1


def test_outward_float32_steps_zero_and_out_of_range_values_properly() -> None:
    values = np.array([-1e-50, 1e-50, 1e39, -1e39, -0.1, 0.1])
    lows = outward_float32(values, down=True).astype(np.float64)
    highs = outward_float32(values, down=False).astype(np.float64)
    assert (lows <= values).all() and (highs >= values).all()
    assert lows[0] < 0.0 and highs[1] > 0.0  # past zero by the smallest float32 step
    assert lows[2] == np.finfo(np.float32).max and highs[3] == -np.finfo(np.float32).max


@pytest.mark.parametrize("gap", [0, 1, 63, 64, 65, 700, 4_999])
def test_first_open_skips_missing_bars_at_the_start(gap: int) -> None:
    """Instrument 1 lacks its first ``gap`` bars (NaN): its first open is the one after them."""
    n = 5_000
    ohlcv = np.ones((n, 2, 5))
    ohlcv[:, :, 0] = np.arange(n, dtype=float)[:, None]
    if gap:
        ohlcv[:gap, 1, :] = np.nan
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    market = MarketData(("A", "B"), index, ohlcv)
    assert market.first_open(0) == 0
    assert market.first_open(1) == gap
    assert np.isnan(MarketData(("A",), index[:3], np.full((3, 1, 5), np.nan)).first_open())


def test_closes_are_each_instruments_closes_as_one_contiguous_row() -> None:
    """Built by validation (one frame), from the cube (several frames, or a bare MarketData),
    ``closes[i]`` always holds ``ohlcv[:, i, 3]``, contiguous (a view of the Fortran-order
    cube), and changing the caller's frame afterwards changes neither."""
    index = pd.date_range("2024-01-01", periods=6, freq="1min", tz="UTC")
    frame = pd.DataFrame(
        {"open": 1.0, "high": 9.0, "low": 0.5, "close": np.arange(1.0, 7.0), "volume": 1.0},
        index=index,
    )
    one = MarketData.coerce(frame, "A")
    frame.loc[index[0], "close"] = 5.0  # the caller's frame, changed after validation
    two = MarketData.coerce({"A": frame.iloc[2:], "B": frame.iloc[:4]})
    bare = MarketData(("A",), index, one.ohlcv.copy())
    for market in (one, two, bare):
        closes = market.closes
        assert closes.flags.c_contiguous
        assert closes.shape == (len(market.symbols), market.n_bars)
        for i in range(len(market.symbols)):
            np.testing.assert_array_equal(closes[i], market.ohlcv[:, i, 3])
    assert one.closes[0, 0] == 1.0
    assert np.isnan(two.closes[0, 0]) and two.closes[1, 0] == 5.0


def test_a_float_frame_is_read_in_place_and_later_edits_of_it_never_reach_the_bars() -> None:
    """A frame holding its five columns as float64 is not copied: the cube views its memory.
    pandas' copy-on-write, with the view kept by MarketData, copies the caller's frame before
    it changes, so the validated bars (and validate_bars' frame) stay as they were checked."""
    frame = bars(8).set_index("timestamp")
    market = MarketData.coerce(frame, "A")
    assert np.shares_memory(market.ohlcv, frame["close"].to_numpy())
    assert market.ohlcv.flags.f_contiguous and market.closes.flags.c_contiguous
    before = market.ohlcv.copy()
    frame.loc[frame.index[2], "close"] = np.nan  # would fail validation
    frame.iloc[3, 0] = 1e9
    frame["volume"] *= 2.0
    np.testing.assert_array_equal(market.ohlcv, before)
    np.testing.assert_array_equal(market.closes[0], before[:, 0, 3])
    with pytest.raises(DataValidationError, match=r"^row 2 .*close is not a finite number"):
        MarketData.coerce(frame, "A")
    other = bars(8).set_index("timestamp")
    clean = validate_bars(other)
    assert np.shares_memory(clean.to_numpy(), other["close"].to_numpy())
    other.iloc[1, 3] = -5.0
    np.testing.assert_array_equal(clean.to_numpy(), before[:, 0, :])


def test_integer_columns_are_converted_to_floats_not_kept_as_given() -> None:
    frame = bars(5).set_index("timestamp")
    frame["volume"] = np.arange(5, dtype=np.int64)  # numbers, but not float64: a copy
    clean = validate_bars(frame)
    assert list(clean.dtypes) == [np.dtype(np.float64)] * 5
    np.testing.assert_array_equal(clean["volume"].to_numpy(), np.arange(5, dtype=float))
    market = MarketData.coerce(frame, "A")
    assert market.source is None and not np.shares_memory(market.ohlcv, frame["open"].to_numpy())


def test_integer_and_text_columns_are_converted_to_floats() -> None:
    frame = bars(5)
    frame["volume"] = np.arange(5, dtype=np.int64)
    frame["open"] = [f"{v}" for v in frame["open"]]
    expected = bars(5).set_index("timestamp").assign(volume=np.arange(5, dtype=float))
    clean = validate_bars(frame)
    assert list(clean.dtypes) == [np.dtype(np.float64)] * 5
    np.testing.assert_array_equal(clean.to_numpy(), expected.to_numpy())
    market = MarketData.coerce(frame, "A")
    np.testing.assert_array_equal(market.ohlcv[:, 0, :], expected.to_numpy())
    assert market.ohlcv.flags.f_contiguous


def test_a_column_given_twice_is_named() -> None:
    frame = bars(5)
    frame["Close"] = frame["close"]  # the same name once case is set aside
    with pytest.raises(DataValidationError, match=r"^column 'close': given more than once"):
        validate_bars(frame)


def test_a_cube_in_any_layout_is_kept_in_fortran_order_with_the_same_values() -> None:
    index = pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC")
    cube = np.arange(4 * 2 * 5, dtype=np.float32).reshape(4, 2, 5)
    market = MarketData(("A", "B"), index, cube)
    assert market.ohlcv.dtype == np.float64 and market.ohlcv.flags.f_contiguous
    np.testing.assert_array_equal(market.ohlcv, cube)
    with pytest.raises(DataValidationError, match=r"must be \[bars, instruments, 5\]"):
        MarketData(("A",), index, np.ones((4, 5)))


def test_market_data_pickles_without_the_callers_frame() -> None:
    """A Dask scatter pickles the bars: the cube once (not the frame it views as well), and in
    Fortran order, with closes that view it."""
    frame = bars(2_000).set_index("timestamp")
    market = MarketData.coerce(frame, "A")
    assert market.closes[0, 0] == 100.0
    blob = pickle.dumps(market)
    assert len(blob) < market.ohlcv.nbytes + 40_000  # the index's 16 kB and the names
    back = pickle.loads(blob)
    assert back.source is None and back.ohlcv.flags.f_contiguous
    np.testing.assert_array_equal(back.ohlcv, market.ohlcv)
    np.testing.assert_array_equal(back.closes, market.closes)
    assert np.shares_memory(back.closes, back.ohlcv)
    assert back.index.equals(market.index) and back.time_ms.tolist() == market.time_ms.tolist()
