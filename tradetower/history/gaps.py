"""Missing data, told apart from a closed market.

Bars are never invented. Where a venue has none, the cache reports a data-quality warning
instead: for crypto (which trades around the clock) any stretch longer than one day without a
bar; for equities any whole session of the NYSE calendar without a bar (nights, weekends and
holidays are closed markets, not gaps).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tradetower.history.calendars import equity_sessions, is_equity, session_day
from tradetower.history.catalog import Gap, Interval, fmt_ms, merge

DAY_MS = 86_400_000


def holes(ts: np.ndarray, interval: Interval, step_ms: int) -> list[Interval]:
    """Stretches of ``interval`` that no bar covers (a bar covers ``[ts, ts + step)``)."""
    a, b = interval
    inside = ts[(ts >= a) & (ts < b)]
    if inside.size == 0:
        return [(a, b)]
    starts = np.r_[a, inside + step_ms]
    ends = np.r_[inside, b]
    keep = ends > starts
    return [(int(s), int(e)) for s, e in zip(starts[keep], ends[keep], strict=True)]


def find_gaps(
    ts: np.ndarray, asked: Sequence[Interval], asset_class: str, step_ms: int
) -> list[Gap]:
    """Data-quality warnings for bars ``ts`` (sorted ms) over the stretches ``asked``."""
    spans = merge(asked)
    if is_equity(asset_class):
        return _missing_sessions(ts, spans)
    out = []
    for span in spans:
        for a, b in holes(ts, span, step_ms):
            if b - a > DAY_MS:
                out.append(Gap(a, b, f"no bars for {(b - a) / DAY_MS:.1f} days"))
    return out


def _missing_sessions(ts: np.ndarray, spans: list[Interval]) -> list[Gap]:
    days_with_bars = set(np.unique(session_day(ts)).tolist()) if ts.size else set()
    out = []
    for a, b in spans:
        for s in equity_sessions(a, b):
            if s.open_ms >= a and s.close_ms <= b and s.day not in days_with_bars:
                reason = f"no bars in the {s.day.isoformat()} session ({fmt_ms(s.open_ms)} UTC)"
                out.append(Gap(s.open_ms, s.close_ms, reason))
    return out
