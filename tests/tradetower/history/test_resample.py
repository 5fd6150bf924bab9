"""Coarser bars from finer ones: first/max/min/last/sum in epoch-aligned UTC buckets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from memory_source import MINUTE, T0, synthetic_bars

from tradetower.history.catalog import to_ms
from tradetower.history.resample import finer_timeframes, resample


def minute_bars(rows: list[tuple[int, float, float, float, float, float]]) -> pd.DataFrame:
    """(minute offset from T0, open, high, low, close, volume) rows."""
    frame = pd.DataFrame(rows, columns=["minute", "open", "high", "low", "close", "volume"])
    frame.insert(0, "ts", T0 + frame.pop("minute") * MINUTE)
    return frame


def test_one_minute_to_five_minutes_exactly() -> None:
    bars = minute_bars(
        [
            (0, 10, 11, 9, 10.5, 1),
            (1, 10.5, 12, 10, 11, 2),
            (2, 11, 11.5, 8, 9, 3),
            (4, 9, 9.5, 8.5, 9.2, 4),  # minute 3 missing: the bucket still closes at minute 4
            (5, 9.2, 9.9, 9.1, 9.8, 5),
            (9, 9.8, 10, 9.7, 9.9, 6),
            (15, 20, 21, 19, 20.5, 7),  # minutes 10-14 missing: no bar is invented
        ]
    )
    out = resample(bars, "5m")
    expected = pd.DataFrame(
        {
            "ts": [T0, T0 + 5 * MINUTE, T0 + 15 * MINUTE],
            "open": [10, 9.2, 20.0],
            "high": [12, 10, 21.0],
            "low": [8, 9.1, 19.0],
            "close": [9.2, 9.9, 20.5],
            "volume": [10, 11, 7.0],
        }
    )
    pd.testing.assert_frame_equal(out, expected, check_dtype=False)
    assert out["ts"].dtype == np.int64


def test_one_minute_to_one_hour_matches_pandas_resample_on_two_days() -> None:
    bars = synthetic_bars(T0 + 7 * MINUTE, T0 + 2 * 1440 * MINUTE)  # starts mid-hour
    out = resample(bars, "1h")
    frame = bars.set_index(pd.to_datetime(bars["ts"], unit="ms", utc=True)).drop(columns="ts")
    reference = frame.resample("1h").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    assert len(out) == 48
    np.testing.assert_array_equal(out["ts"], reference.index.as_unit("ms").asi8)
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(out[col], reference[col].to_numpy())
    np.testing.assert_allclose(out["volume"], reference["volume"].to_numpy(), rtol=1e-12)


def test_four_hour_buckets_are_aligned_to_the_epoch_in_utc() -> None:
    bars = minute_bars([(3 * 60 + 59, 1, 2, 0.5, 1.5, 1), (4 * 60, 1.5, 3, 1, 2, 1)])
    assert resample(bars, "4h")["ts"].tolist() == [T0, T0 + 4 * 60 * MINUTE]


def test_equity_dailies_are_session_bars_stamped_at_midnight_new_york() -> None:
    # 2024-07-01 (EDT): pre-market 08:00 UTC, regular 13:30-20:00 UTC, post until 00:00 UTC,
    # so the 23:59 UTC bar still belongs to July 1st's session
    day = to_ms("2024-07-01")
    bars = pd.DataFrame(
        {
            "ts": [day + 8 * 60 * MINUTE, day + 14 * 60 * MINUTE, day + (24 * 60 - 1) * MINUTE],
            "open": [1.0, 2.0, 3.0],
            "high": [1.5, 2.5, 3.5],
            "low": [0.5, 1.5, 2.5],
            "close": [1.2, 2.2, 3.2],
            "volume": [1.0, 2.0, 3.0],
        }
    )
    out = resample(bars, "1d", "equity")
    assert out["ts"].tolist() == [to_ms("2024-07-01 04:00")]
    assert out.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [
        1.0,
        3.5,
        0.5,
        3.2,
        6.0,
    ]
    crypto = resample(bars, "1d", "crypto")
    assert crypto["ts"].tolist() == [day]


def test_vwap_is_volume_weighted_and_trades_add_up() -> None:
    bars = minute_bars([(0, 10, 11, 9, 10, 1), (1, 10, 12, 10, 11, 3)])
    bars["vwap"] = [10.0, 11.0]
    bars["trades"] = [4.0, 6.0]
    out = resample(bars, "5m")
    assert out["vwap"].tolist() == [pytest.approx(10.75)]
    assert out["trades"].tolist() == [10.0]


def test_finer_timeframes_are_listed_finest_first() -> None:
    assert finer_timeframes("1h") == ["1m", "5m", "15m"]
    assert finer_timeframes("1m") == []
