"""Sessions from the NYSE calendar, and gaps told apart from a closed market."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from memory_source import DAY, MINUTE, MemorySource, synthetic_bars

from tradetower.history.cache import HistoryCache
from tradetower.history.calendars import equity_sessions, open_intervals
from tradetower.history.catalog import Gap, to_ms
from tradetower.history.gaps import find_gaps
from tradetower.history.store import LocalStore

JUL1, JUL13 = to_ms("2024-07-01"), to_ms("2024-07-13")
MISSING_DAY = "2024-07-09"


def utc(text: str) -> int:
    return to_ms(pd.Timestamp(text, tz="UTC"))


def regular_minutes(start_ms: int, end_ms: int, skip_day: str = "") -> np.ndarray:
    """Minute bar times of every regular session in the span, except ``skip_day``'s."""
    parts = [
        np.arange(s.open_ms, s.close_ms, MINUTE)
        for s in equity_sessions(start_ms, end_ms)
        if s.day.isoformat() != skip_day
    ]
    return np.concatenate(parts)


def test_crypto_is_always_open() -> None:
    assert open_intervals("crypto", JUL1, JUL13) == [(JUL1, JUL13)]


def test_independence_day_and_the_weekend_have_no_session_and_early_close_is_kept() -> None:
    days = [s.day.isoformat() for s in equity_sessions(JUL1, JUL13)]
    assert days == [
        "2024-07-01",
        "2024-07-02",
        "2024-07-03",
        "2024-07-05",
        "2024-07-08",
        "2024-07-09",
        "2024-07-10",
        "2024-07-11",
        "2024-07-12",
    ]
    regular = open_intervals("equity", utc("2024-07-03"), utc("2024-07-06"), extended=False)
    assert regular == [
        (utc("2024-07-03 13:30"), utc("2024-07-03 17:00")),  # 09:30-13:00 ET, early close
        (utc("2024-07-05 13:30"), utc("2024-07-05 20:00")),
    ]


def test_extended_hours_are_four_to_twenty_new_york_time_in_summer_and_winter() -> None:
    summer = open_intervals("equity", utc("2024-07-01"), utc("2024-07-02"))
    winter = open_intervals("equity", utc("2024-12-02"), utc("2024-12-03 12:00"))
    assert summer == [(utc("2024-07-01 08:00"), utc("2024-07-02"))]  # 04:00-20:00 EDT
    assert winter == [
        (utc("2024-12-02 09:00"), utc("2024-12-03 01:00")),  # 04:00-20:00 EST
        (utc("2024-12-03 09:00"), utc("2024-12-03 12:00")),  # cut at the span's end
    ]


def test_a_missing_session_is_a_gap_and_holidays_weekends_and_nights_are_not() -> None:
    ts = regular_minutes(JUL1, JUL13, skip_day=MISSING_DAY)
    gaps = find_gaps(ts, [(JUL1, JUL13)], "equity", MINUTE)
    assert gaps == [
        Gap(
            utc("2024-07-09 13:30"),
            utc("2024-07-09 20:00"),
            "no bars in the 2024-07-09 session (2024-07-09 13:30 UTC)",
        )
    ]
    assert find_gaps(regular_minutes(JUL1, JUL13), [(JUL1, JUL13)], "equity", MINUTE) == []


def test_daily_equity_bars_stamped_at_midnight_new_york_match_their_session() -> None:
    days = [s.day for s in equity_sessions(JUL1, JUL13) if s.day.isoformat() != MISSING_DAY]
    ts = np.array(
        [to_ms(pd.Timestamp(d).tz_localize("America/New_York")) for d in days], dtype=np.int64
    )
    gaps = find_gaps(ts, [(JUL1, JUL13)], "equity", DAY)
    assert [(g.start_ms, g.end_ms) for g in gaps] == [
        (utc("2024-07-09 13:30"), utc("2024-07-09 20:00"))
    ]


def test_crypto_holes_longer_than_a_day_are_gaps_a_day_or_less_is_not() -> None:
    day_hole = (JUL1 + DAY, JUL1 + 2 * DAY)
    long_hole = (JUL1 + 5 * DAY, JUL1 + 6 * DAY + MINUTE)
    ts = synthetic_bars(JUL1, JUL13, skip=(day_hole, long_hole))["ts"].to_numpy()
    assert find_gaps(ts, [(JUL1, JUL13)], "crypto", MINUTE) == [
        Gap(*long_hole, "no bars for 1.0 days")
    ]


def test_the_cache_reports_a_missing_equity_session_but_not_the_holiday(tmp_path: Path) -> None:
    ts = regular_minutes(JUL1, JUL13, skip_day=MISSING_DAY)
    bars = synthetic_bars(int(ts[0]), int(ts[-1]) + MINUTE)
    bars = bars[bars["ts"].isin(ts)].reset_index(drop=True)
    source = MemorySource(bars, venue="alpaca", asset="equity", page_bars=2000)
    cache = HistoryCache(LocalStore(tmp_path))
    cache.fetch(source, "AAPL", "1m", JUL1, JUL13, progress=False)
    summary = cache.summary("alpaca", "AAPL", "1m")
    assert summary.entry.key.id == "alpaca:equity:AAPL:1m"
    assert [(g.start_ms, g.end_ms) for g in summary.gaps] == [
        (utc("2024-07-09 13:30"), utc("2024-07-09 20:00"))
    ]
    assert summary.entry.data_quality == summary.gaps
    # the long weekend and the holiday are known empty stretches, not asked for again
    assert (utc("2024-07-03 17:00"), utc("2024-07-05 13:30")) in summary.entry.empty_ranges
    cache.fetch(source, "AAPL", "1m", JUL1, JUL13, progress=False)
    assert len(source.calls) == 1
