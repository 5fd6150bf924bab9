"""Interval arithmetic on ``[start_ms, end_ms)`` pairs, and the per-series catalog document.

The catalog says what the cache holds, so that a request minus ``ranges`` minus
``emptyRanges`` is exactly what must still be fetched. ``ranges`` are fetched stretches that
hold bars; ``emptyRanges`` are stretches the venue was asked for and had none (downtime, before
a listing, weekends of an equity): they are known gaps, never asked for again. Both lists are
merged, sorted and disjoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from tradetower.errors import DataValidationError
from tradetower.history.layout import SeriesKey

Interval = tuple[int, int]

SCHEMA_VERSION = 1
STATUSES = ("AVAILABLE", "FETCHING", "ERROR")


def merge(intervals: Iterable[Sequence[int]]) -> list[Interval]:
    """Sorted, disjoint intervals covering the same points; touching intervals join."""
    ordered = sorted((int(a), int(b)) for a, b in intervals if int(b) > int(a))
    out: list[Interval] = []
    for a, b in ordered:
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def subtract(base: Iterable[Sequence[int]], minus: Iterable[Sequence[int]]) -> list[Interval]:
    """The points of ``base`` not in ``minus``."""
    holes = merge(minus)
    out: list[Interval] = []
    for a, b in merge(base):
        cursor = a
        for ha, hb in holes:
            if hb <= cursor or ha >= b:
                continue
            if ha > cursor:
                out.append((cursor, ha))
            cursor = max(cursor, hb)
            if cursor >= b:
                break
        if cursor < b:
            out.append((cursor, b))
    return out


def intersect(left: Iterable[Sequence[int]], right: Iterable[Sequence[int]]) -> list[Interval]:
    """The points in both."""
    rights = merge(right)
    out: list[Interval] = []
    for a, b in merge(left):
        for c, d in rights:
            lo, hi = max(a, c), min(b, d)
            if lo < hi:
                out.append((lo, hi))
    return merge(out)


def total_length(intervals: Iterable[Sequence[int]]) -> int:
    return sum(b - a for a, b in merge(intervals))


def to_ms(value: object, *, what: str = "time") -> int:
    """Milliseconds since the epoch (UTC) from a date string, datetime, Timestamp or int ms.

    A naive date or time is read as UTC.
    """
    if isinstance(value, bool):
        raise DataValidationError(f"{what}: {value!r} is not a date")
    if isinstance(value, int):
        return value
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise DataValidationError(f"{what}: cannot read {value!r} as a date ({exc})") from None
    if pd.isna(stamp):
        raise DataValidationError(f"{what}: {value!r} is not a date")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // 1_000_000)


def fmt_ms(ts_ms: int) -> str:
    """A time for people: ``2024-01-01`` at midnight, else ``2024-01-01 09:30`` (UTC)."""
    when = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    if when.hour == when.minute == when.second == 0:
        return when.strftime("%Y-%m-%d")
    if when.second == 0:
        return when.strftime("%Y-%m-%d %H:%M")
    return when.strftime("%Y-%m-%d %H:%M:%S")


def fmt_intervals(intervals: Sequence[Interval], limit: int = 3) -> str:
    """``2024-01-01 → 2024-02-01, ...`` with at most ``limit`` shown."""
    if not intervals:
        return "-"
    shown = [f"{fmt_ms(a)} → {fmt_ms(b)}" for a, b in intervals[:limit]]
    more = len(intervals) - limit
    return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")


@dataclass(frozen=True, slots=True)
class Gap:
    """A data-quality warning: no bars over ``[start_ms, end_ms)`` where bars were expected."""

    start_ms: int
    end_ms: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start_ms, "end": self.end_ms, "reason": self.reason}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Gap:
        return cls(int(raw["start"]), int(raw["end"]), str(raw["reason"]))


@dataclass
class CatalogEntry:
    """What the cache holds of one series (one JSON document beside its files)."""

    key: SeriesKey
    ranges: list[Interval] = field(default_factory=list)
    empty_ranges: list[Interval] = field(default_factory=list)
    files: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per period: ``rows`` and ``bytes`` of its Parquet file."""
    status: str = "AVAILABLE"
    error: str = ""
    data_quality: list[Gap] = field(default_factory=list)
    updated_at: str = ""

    @property
    def total_candles(self) -> int:
        return sum(f["rows"] for f in self.files.values())

    @property
    def total_bytes(self) -> int:
        return sum(f["bytes"] for f in self.files.values())

    @property
    def asked(self) -> list[Interval]:
        """Everything the venue was asked for and answered: held and known-empty stretches."""
        return merge([*self.ranges, *self.empty_ranges])

    def missing(self, start_ms: int, end_ms: int) -> list[Interval]:
        """The part of ``[start_ms, end_ms)`` never asked for: the fetch plan."""
        return subtract([(start_ms, end_ms)], self.asked)

    def record_held(self, interval: Interval) -> None:
        """``interval`` was fetched and holds bars (or short holes between them)."""
        self.ranges = merge([*self.ranges, interval])
        self.empty_ranges = subtract(self.empty_ranges, [interval])

    def record_empty(self, interval: Interval) -> None:
        """The venue had no bars over ``interval``: a known gap, never asked for again."""
        self.empty_ranges = merge([*self.empty_ranges, interval])
        self.ranges = subtract(self.ranges, [interval])

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.key.id,
            "documentType": "CATALOG",
            "_schemaVersion": SCHEMA_VERSION,
            "exchange": self.key.exchange,
            "assetClass": self.key.asset_class,
            "symbol": self.key.symbol,
            "timeframe": self.key.timeframe,
            "ranges": [list(r) for r in self.ranges],
            "emptyRanges": [list(r) for r in self.empty_ranges],
            "totalCandles": self.total_candles,
            "totalBytes": self.total_bytes,
            "files": self.files,
            "status": self.status,
            "error": self.error,
            "dataQuality": [g.to_json() for g in self.data_quality],
            "updatedAt": self.updated_at,
        }

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), indent=1, sort_keys=True).encode()

    @classmethod
    def loads(cls, data: bytes, where: str = "catalog") -> CatalogEntry:
        try:
            raw = json.loads(data)
            key = SeriesKey(
                str(raw["exchange"]),
                str(raw["assetClass"]),
                str(raw["symbol"]),
                str(raw["timeframe"]),
            )
            return cls(
                key=key,
                ranges=merge(raw.get("ranges", [])),
                empty_ranges=merge(raw.get("emptyRanges", [])),
                files={
                    str(p): {"rows": int(f["rows"]), "bytes": int(f["bytes"])}
                    for p, f in raw.get("files", {}).items()
                },
                status=str(raw.get("status", "AVAILABLE")),
                error=str(raw.get("error", "")),
                data_quality=[Gap.from_json(g) for g in raw.get("dataQuality", [])],
                updated_at=str(raw.get("updatedAt", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DataValidationError(f"{where}: not a readable catalog document ({exc})") from None
