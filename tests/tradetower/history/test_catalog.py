"""Interval arithmetic, the catalog document and the cache layout's paths."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tradetower.errors import DataValidationError
from tradetower.history.catalog import (
    CatalogEntry,
    Gap,
    fmt_intervals,
    intersect,
    merge,
    subtract,
    to_ms,
)
from tradetower.history.layout import (
    SeriesKey,
    period_bounds,
    period_of,
    periods_between,
    periods_of,
    safe_symbol,
)

JAN = 1_704_067_200_000  # 2024-01-01
FEB = 1_706_745_600_000  # 2024-02-01
MAR = 1_709_251_200_000  # 2024-03-01


def test_merge_sorts_joins_touching_and_overlapping_and_drops_empty() -> None:
    assert merge([(5, 7), (1, 3), (3, 4), (6, 9), (10, 10), (12, 11)]) == [(1, 4), (5, 9)]


def test_subtract_cuts_holes_out_of_every_interval() -> None:
    assert subtract([(0, 100)], [(10, 20), (30, 40), (90, 120)]) == [(0, 10), (20, 30), (40, 90)]
    assert subtract([(0, 10), (20, 30)], [(5, 25)]) == [(0, 5), (25, 30)]
    assert subtract([(0, 10)], [(0, 10)]) == []
    assert subtract([(0, 10)], []) == [(0, 10)]


def test_intersect() -> None:
    assert intersect([(0, 10), (20, 30)], [(5, 25)]) == [(5, 10), (20, 25)]
    assert intersect([(0, 10)], [(10, 20)]) == []


def test_missing_is_request_minus_ranges_minus_empty_ranges() -> None:
    entry = CatalogEntry(SeriesKey("coinbase", "crypto", "BTC-USD", "1m"))
    entry.record_held((0, 100))
    entry.record_empty((150, 200))
    assert entry.missing(50, 250) == [(100, 150), (200, 250)]
    assert entry.missing(0, 100) == []


def test_record_empty_takes_the_stretch_out_of_ranges_and_record_held_back() -> None:
    entry = CatalogEntry(SeriesKey("coinbase", "crypto", "BTC-USD", "1m"))
    entry.record_held((0, 100))
    entry.record_empty((40, 60))
    assert (entry.ranges, entry.empty_ranges) == ([(0, 40), (60, 100)], [(40, 60)])
    entry.record_held((50, 60))
    assert (entry.ranges, entry.empty_ranges) == ([(0, 40), (50, 100)], [(40, 50)])


def test_catalog_document_round_trips_with_the_spec_field_names() -> None:
    entry = CatalogEntry(SeriesKey("coinbase", "crypto", "BTC-USD", "1m"))
    entry.record_held((JAN, FEB))
    entry.record_empty((FEB, MAR))
    entry.files["2024-01"] = {"rows": 44_640, "bytes": 1_000}
    entry.data_quality = [Gap(FEB, MAR, "no bars for 29.0 days")]
    raw = json.loads(entry.dumps())
    assert raw["id"] == "coinbase:crypto:BTC-USD:1m"
    assert raw["ranges"] == [[JAN, FEB]]
    assert raw["emptyRanges"] == [[FEB, MAR]]
    assert raw["totalCandles"] == 44_640
    assert raw["status"] == "AVAILABLE"
    back = CatalogEntry.loads(entry.dumps())
    assert back.to_json() == entry.to_json()


def test_a_damaged_catalog_is_refused_with_its_path() -> None:
    with pytest.raises(
        DataValidationError, match=re.escape("x/_catalog.json: not a readable catalog")
    ):
        CatalogEntry.loads(b"{not json", "x/_catalog.json")


def test_to_ms_reads_dates_times_and_ints_as_utc() -> None:
    assert to_ms("2024-01-01") == JAN
    assert to_ms("2024-01-01T01:00:00+01:00") == JAN
    assert to_ms(JAN) == JAN
    with pytest.raises(DataValidationError, match="start: cannot read 'soon' as a date"):
        to_ms("soon", what="start")


def test_fmt_intervals_shows_dates_and_counts_the_rest() -> None:
    assert fmt_intervals([(JAN, FEB)]) == "2024-01-01 → 2024-02-01"
    assert fmt_intervals([(JAN, JAN + 90_000)]) == "2024-01-01 → 2024-01-01 00:01:30"
    many = [(JAN + i * 1000, JAN + i * 1000 + 500) for i in range(5)]
    assert fmt_intervals(many, limit=2).endswith("(+3 more)")
    assert fmt_intervals([]) == "-"


def test_paths_follow_the_spec_layout() -> None:
    key = SeriesKey("coinbase", "crypto", "BTC/USD", "1m")
    assert key.file_path("2024-01") == "coinbase/crypto/BTC-USD/1m/2024-01.parquet"
    assert key.catalog_path == "coinbase/crypto/BTC-USD/1m/_catalog.json"
    assert safe_symbol("ETH/BTC") == "ETH-BTC"
    with pytest.raises(DataValidationError, match="cannot name a cache folder"):
        safe_symbol("..")


@pytest.mark.parametrize(
    ("timeframe", "period"),
    [
        ("1m", "2024-02"),
        ("5m", "2024-02"),
        ("15m", "2024-02"),
        ("1h", "2024"),
        ("4h", "2024"),
        ("1d", "all"),
    ],
)
def test_periods_are_months_up_to_15m_years_for_hours_and_all_for_days(
    timeframe: str, period: str
) -> None:
    assert period_of(FEB + 5, timeframe) == period
    assert periods_of(np.array([FEB + 5]), timeframe).tolist() == [period]


def test_period_bounds_and_periods_between() -> None:
    assert period_bounds("2024-01", "1m") == (JAN, FEB)
    assert period_bounds("2024", "1h")[0] == JAN
    assert periods_between(JAN, MAR, "1m") == ["2024-01", "2024-02"]
    assert periods_between(JAN, MAR + 1, "5m") == ["2024-01", "2024-02", "2024-03"]
    assert periods_between(JAN, MAR, "4h") == ["2024"]
    assert periods_between(JAN, MAR, "1d") == ["all"]
    with pytest.raises(DataValidationError, match="unknown timeframe '2m'"):
        periods_between(JAN, MAR, "2m")
