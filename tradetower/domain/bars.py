"""OHLCV bars: loading from Parquet or CSV, and the checks every file must pass.

A bad file gets one :class:`~tradetower.errors.DataValidationError` naming the first bad row,
never a traceback from deep inside the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from numba import njit

from tradetower.domain.epoch import NAT, NS_PER_UNIT, epoch_ms
from tradetower.errors import DataValidationError

OHLCV = ("open", "high", "low", "close", "volume")
REQUIRED = ("timestamp", *OHLCV)


def read_bars(path: str | Path) -> pd.DataFrame:
    """Read a Parquet or CSV file of bars and validate it (see :func:`validate_bars`)."""
    p = Path(path)
    if not p.exists():
        raise DataValidationError(f"{p}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif suffix in (".csv", ".txt"):
            frame = pd.read_csv(p)
        else:
            raise DataValidationError(f"{p}: unknown format {suffix!r} (use .parquet or .csv)")
    except DataValidationError:
        raise
    except Exception as exc:  # pyarrow and pandas raise many types for a corrupt file
        raise DataValidationError(f"{p}: cannot be read ({exc})") from exc
    try:
        return validate_bars(frame)
    except DataValidationError as exc:
        raise DataValidationError(f"{p}: {exc}", row=exc.row, column=exc.column) from None


def _epoch_unit(values: np.ndarray) -> Literal["s", "ms", "us", "ns"]:
    """The unit of epoch numbers, from their size: any date after 1973 has at least 9 digits in
    seconds, 12 in milliseconds, 15 in microseconds and 18 in nanoseconds."""
    top = float(np.max(np.abs(values))) if values.size else 0.0
    if top > 1e17:
        return "ns"
    if top > 1e14:
        return "us"
    if top > 1e11:
        return "ms"
    return "s"


def _first_unparseable(ts: pd.Series) -> int | None:
    """The first row whose timestamp cannot be parsed on its own, if any."""
    for r, value in enumerate(ts.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        try:
            _to_utc(pd.Series([value]))
        except (ValueError, TypeError, OverflowError):
            return r
    return None


def _to_utc(ts: pd.Series) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(ts):
        idx = pd.DatetimeIndex(ts)
        return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    if pd.api.types.is_numeric_dtype(ts):
        values = ts.to_numpy(dtype="float64")
        finite = values[np.isfinite(values)]
        return pd.DatetimeIndex(pd.to_datetime(values, unit=_epoch_unit(finite), utc=True))
    return pd.DatetimeIndex(pd.to_datetime(ts.astype(str).tolist(), utc=True, format="mixed"))


def validate_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a clean frame indexed by UTC timestamps with float64 OHLCV columns.

    Accepts the timestamp as a column (any case) or as a datetime index. Refuses missing
    columns, unparseable or NaN values, unsorted or duplicate timestamps, ``high < low``,
    an open or close outside ``[low, high]`` and negative volume; the message names the row.
    """
    checked = _validated(frame)
    if checked.source is not None:  # a view of the caller's frame: one pandas tracks
        return checked.source.set_axis(checked.times)
    return pd.DataFrame(checked.values, index=checked.times, columns=list(OHLCV), copy=False)


class _Checked(NamedTuple):
    """What :func:`_validated` gives: the checked bars and what the engine reads of them."""

    times: pd.DatetimeIndex
    """UTC, named ``timestamp``."""
    values: np.ndarray
    """float64 [n, 5] in Fortran order: each field one contiguous column."""
    source: pd.DataFrame | None
    """The frame ``values`` is a view of, or None when ``values`` is a copy. While it lives,
    pandas' copy-on-write keeps the caller's later edits of their own frame out of ``values``."""


def _validated(frame: pd.DataFrame) -> _Checked:
    """:func:`validate_bars`, as a :class:`_Checked`."""
    names = [str(c).strip().lower() for c in frame.columns]
    df = frame.copy(deep=False)  # ours: copy-on-write keeps the caller's later edits out of it
    if names != list(frame.columns):
        df.columns = names
    present = set(names)  # (asking a new column Index builds its hash table: 0.2 ms)
    stamps: pd.Series | None = None  # the timestamps: a column (or an alias), else the index
    for name in ("timestamp", "ts", "time", "date", "datetime"):
        if name in present:
            stamps = df[name]
            break
    else:
        if isinstance(df.index, pd.DatetimeIndex):
            # A view of the index, not a frame with it moved into a column (a copy).
            stamps = pd.Series(df.index, name="timestamp", copy=False)
    missing = [c for c in OHLCV if c not in present]
    if stamps is None or missing:
        absent = (["timestamp"] if stamps is None else []) + missing
        raise DataValidationError(
            f"missing column(s) {', '.join(absent)}; expected {', '.join(REQUIRED)}",
            column=absent[0],
        )
    if len(df) == 0:
        raise DataValidationError("the file holds no bars")
    try:
        index = _to_utc(stamps)
    except (ValueError, TypeError, OverflowError) as exc:
        r = _first_unparseable(stamps)
        if r is not None:
            value = stamps.iloc[r]
            raise DataValidationError(
                _row_msg(r, f"timestamp cannot be parsed ({_show(value)})"),
                row=r,
                column="timestamp",
            ) from None
        raise DataValidationError(
            f"timestamp column cannot be parsed ({exc})", column="timestamp"
        ) from None
    values, source = _ohlcv_values(df)
    ticks = np.ascontiguousarray(index.asi8)  # its own unit: order and equality need no other
    o, h, lo, c, v = (values[:, j] for j in range(5))
    first = _checked_nb(o, h, lo, c, v, ticks)
    # NaT is the smallest tick, so one anywhere also fails the order check (at row 0 it is
    # looked for by itself): only a frame that fails some check pays for a NaT search.
    if first.max() >= 0 and index.hasnans:
        r = int(np.flatnonzero(pd.isna(index))[0])
        raise DataValidationError(_row_msg(r, "timestamp is missing"), row=r)
    for j, col in enumerate(OHLCV):
        if first[j] >= 0:
            r = int(first[j])
            raise DataValidationError(
                _row_msg(r, f"{col} is not a finite number ({_show(df[col].iloc[r])})", index[r]),
                row=r,
                column=col,
            )
    if first[_STEP_CHECK] >= 0:
        r = int(first[_STEP_CHECK])
        same = ticks[r] == ticks[r - 1]
        what = "duplicate timestamp" if same else "timestamps not sorted ascending"
        raise DataValidationError(_row_msg(r, what, index[r]), row=r, column="timestamp")
    for k, (what, col) in enumerate(_RELATION_CHECKS):
        r = int(first[_STEP_CHECK + 1 + k])
        if r >= 0:
            o, h, lo, c, v = values[r]
            detail = f"{what} (open={o}, high={h}, low={lo}, close={c}, volume={v})"
            raise DataValidationError(_row_msg(r, detail, index[r]), row=r, column=col)
    # (the index is renamed as a view, which keeps its caches)
    return _Checked(index.rename("timestamp"), values, source)


def _ohlcv_values(df: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame | None]:
    """The five columns as float64 [n, 5] in Fortran order, and the frame that array views.

    Where the columns are numbers, pandas gives them in that order as one block: a view of the
    caller's memory when their frame holds the five columns together as float64 (a frame
    read from Parquet or built by numpy does), else a copy (other number types: converted,
    and no frame is returned). Only text columns are parsed one by one. The engine never
    writes to bars; the array is marked writeable only so that numba compiles every kernel
    for one array type."""
    ohlcv = df if tuple(df.columns) == OHLCV else df[list(OHLCV)]  # (a selection: 0.3 ms)
    dtypes = [d for d in ohlcv.dtypes if isinstance(d, np.dtype) and d.kind in "fiu"]
    if len(dtypes) == len(OHLCV) == ohlcv.shape[1]:
        values = np.asfortranarray(ohlcv.to_numpy(dtype=np.float64))
        values.flags.writeable = True
        floats = all(d == np.float64 for d in dtypes)  # else values is a converted copy
        return values, ohlcv if floats else None
    fields = np.empty((len(OHLCV), len(df)))
    for j, col in enumerate(OHLCV):
        series = df[col]
        if isinstance(series, pd.DataFrame):
            raise DataValidationError("given more than once (names match without case)", column=col)
        fields[j] = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    return fields.T, None


_STEP_CHECK = 5  # after the five columns' finiteness
_RELATION_CHECKS = (
    ("high < low", "high"),
    ("open above high", "open"),
    ("open below low", "open"),
    ("close above high", "close"),
    ("close below low", "close"),
    ("negative volume", "volume"),
)


@njit(cache=True)
def _checked_nb(
    opens: np.ndarray,
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    volumes: np.ndarray,
    ticks: np.ndarray,
) -> np.ndarray:
    """The first row failing each check (-1 where none does): a non-finite value in each of
    the five columns; a timestamp not after the one before (or NaT at row 0); then, in order,
    high < low, open above high, open below low, close above high, close below low, negative
    volume. The caller reports the first check that failed, at its first row.

    A first pass counts the bad rows without a branch, which vectorises (a year of minutes in
    about 0.8 ms, the speed of reading the columns); only bars with a bad row take a second."""
    n = opens.shape[0]
    first = np.full(_STEP_CHECK + 1 + len(_RELATION_CHECKS), -1, dtype=np.int64)
    n_bad = 0
    for t in range(n):
        o = opens[t]
        h = highs[t]
        lo = lows[t]
        c = closes[t]
        v = volumes[t]
        finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
        bad = ~(finite & np.isfinite(v)) | (h < lo) | (o > h) | (o < lo) | (c > h) | (c < lo)
        n_bad += bad | (v < 0)
    for t in range(1, n):
        n_bad += ticks[t] <= ticks[t - 1]
    if n > 0:
        n_bad += ticks[0] == NAT
    if n_bad > 0:
        for t in range(n):
            _first_failures(first, t, opens[t], highs[t], lows[t], closes[t], volumes[t], ticks)
    return first


@njit(cache=True, inline="always")
def _first_failures(
    first: np.ndarray,
    t: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    v: float,
    ticks: np.ndarray,
) -> None:
    row = (o, h, lo, c, v)
    for j in range(5):
        if first[j] < 0 and not np.isfinite(row[j]):
            first[j] = t
    if first[_STEP_CHECK] < 0 and (ticks[t] <= ticks[t - 1] if t > 0 else ticks[0] == NAT):
        first[_STEP_CHECK] = t
    bad = (h < lo, o > h, o < lo, c > h, c < lo, v < 0)  # as _RELATION_CHECKS
    for k in range(len(_RELATION_CHECKS)):
        if bad[k] and first[_STEP_CHECK + 1 + k] < 0:
            first[_STEP_CHECK + 1 + k] = t


def _show(value: object) -> str:
    """A cell as a user would write it: strings quoted, numbers plain (no ``np.float64(...)``)."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def outward_float32(values: np.ndarray, *, down: bool) -> np.ndarray:
    """``values`` as contiguous float32, each rounded outwards (lows down, highs up).

    A bar whose float32 range lies strictly inside a level's bounds has its true range inside
    them too, so the simulator's skip loop may trust the float32 copy to pass quiet bars; any
    bar it stops at is checked again in float64. Half the memory a run streams."""
    return _outward_nb(np.ascontiguousarray(values, dtype=np.float64), down)


@njit(cache=True)
def _outward_nb(values: np.ndarray, down: bool) -> np.ndarray:
    """One pass, without branches in the common case (a year of minutes in under 1 ms)."""
    n = values.shape[0]
    out = np.empty(n, dtype=np.float32)
    bits = out.view(np.int32)
    sign = np.int32(1) if down else np.int32(-1)
    odd = False
    for i in range(n):
        v = values[i]
        f = np.float32(v)
        out[i] = f
        need = (f > v) if down else (f < v)
        edge = f == 0.0 or abs(f) == np.inf
        odd |= need and edge
        # one float32 step outwards moves the bit pattern by one; the sign decides the way
        bits[i] += np.int32(need and not edge) * (sign * np.int32(2 * (f < 0.0) - 1))
    if odd:  # zero and infinity have no neighbour one bit away: step them properly
        for i in range(n):
            v = values[i]
            f = np.float32(v)
            if ((f > v) if down else (f < v)) and (f == 0.0 or abs(f) == np.inf):
                out[i] = np.nextafter(f, np.float32(-np.inf) if down else np.float32(np.inf))
    return out


def _row_msg(row: int, what: str, ts: object = None) -> str:
    at = f" ({ts})" if ts is not None else ""
    return f"row {row}{at}: {what}"


@dataclass(frozen=True)
class MarketData:
    """Bars of one or more instruments on one shared timeline.

    ``ohlcv[t, i, k]`` is field k (open, high, low, close, volume) of instrument i at bar t;
    a bar an instrument lacks is NaN and produces no event for it.

    The cube is kept in Fortran order: each instrument's field is one contiguous column, as
    a frame holds it. Validation then reads a frame's float64 columns in place (no gather into
    rows), the closes every indicator reads are a view, and the simulator's scans over lows
    and highs stream two columns instead of every field of every bar. Any other array given
    is copied into that order, so every kernel sees one layout (and is compiled once).
    """

    symbols: tuple[str, ...]
    index: pd.DatetimeIndex
    ohlcv: np.ndarray
    source: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    """The caller's frame (a copy-on-write view of it) whose memory ``ohlcv`` reads, if any:
    kept so that pandas copies that frame before the caller edits it, and ``ohlcv`` stays the
    bars that were validated."""
    rising: bool = field(default=False, compare=False)
    """The index is known to rise strictly (validated bars, or a slice of them): a run's
    metrics then need not check it again. False for an index given as is."""

    def __post_init__(self) -> None:
        cube = self.ohlcv
        if cube.ndim != 3:
            raise DataValidationError(f"ohlcv must be [bars, instruments, 5], not {cube.shape}")
        if cube.dtype != np.float64 or not cube.flags.f_contiguous:
            object.__setattr__(self, "ohlcv", np.asfortranarray(cube, dtype=np.float64))

    def __getstate__(self) -> dict[str, object]:
        """Pickled (a Dask scatter, say) without the caller's frame: the cube travels as its own
        copy, and the closes are a view of it, rebuilt on first use."""
        state = dict(vars(self))
        state["source"] = None
        state.pop("closes", None)
        return state

    @property
    def n_bars(self) -> int:
        return int(self.ohlcv.shape[0])

    def frame(self, symbol: str) -> pd.DataFrame:
        i = self.symbols.index(symbol)
        return pd.DataFrame(self.ohlcv[:, i, :], index=self.index, columns=list(OHLCV))

    def close(self, symbol: str | None = None) -> pd.Series:
        i = 0 if symbol is None else self.symbols.index(symbol)
        name = self.symbols[i]
        return pd.Series(self.ohlcv[:, i, 3], index=self.index, name=name)

    @cached_property
    def closes(self) -> np.ndarray:
        """Each instrument's closes as one contiguous row: ``closes[i]`` holds the values of
        ``ohlcv[:, i, 3]``, which in the Fortran-order cube is already contiguous: a view.
        Indicators (moving averages and the like) read these."""
        rows: np.ndarray = np.ascontiguousarray(self.ohlcv[:, :, 3].T)  # a view: Fortran order
        return rows

    def last_close(self, i: int = 0) -> float | None:
        """Instrument ``i``'s last finite close, looked for backwards from the end (where it
        nearly always is: a sweep asks once per combination), or None when it has none."""
        closes = self.ohlcv[:, i, 3]
        end, span = closes.shape[0], 64
        while end > 0:
            block = closes[max(0, end - span) : end]
            finite = np.flatnonzero(np.isfinite(block))
            if finite.size:
                return float(block[finite[-1]])
            end -= span
            span *= 8
        return None

    def first_open(self, i: int = 0) -> float:
        """Instrument ``i``'s first finite open (NaN when it has none), looked for from the
        start in growing blocks: it is nearly always the first bar."""
        opens = self.ohlcv[:, i, 0]
        start, span = 0, 64
        while start < opens.shape[0]:
            block = opens[start : start + span]
            finite = np.flatnonzero(~np.isnan(block))
            if finite.size:
                return float(block[finite[0]])
            start += span
            span *= 8
        return float("nan")

    def built_streams(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The lows and highs of :attr:`streams` if something has already built them (a sweep
        over these bars), else None: one backtest is better off without building them."""
        built: tuple[np.ndarray, np.ndarray, np.ndarray] | None = vars(self).get("streams")
        return None if built is None else (built[0], built[1])

    @cached_property
    def streams(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One instrument's lows and highs (:func:`outward_float32`) and closes (float64) as
        contiguous arrays, all empty for several instruments: the simulator's skip loop and a
        sweep's metrics stream them. Computed once per data set, however many runs read them."""
        if self.ohlcv.shape[1] != 1:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32), np.zeros(0)
        return (
            outward_float32(self.ohlcv[:, 0, 2], down=True),
            outward_float32(self.ohlcv[:, 0, 1], down=False),
            self.closes[0],
        )

    @cached_property
    def time_ms(self) -> np.ndarray:
        """Bar times in epoch milliseconds (computed once). The simulator reads :attr:`ticks`
        instead: converting a year of minutes costs about 0.8 ms."""
        return epoch_ms(self.index)

    @property
    def ticks(self) -> np.ndarray:
        """Bar times as the index holds them: epoch integers in its unit (a view, no copy),
        converted to milliseconds by :attr:`tick_scale`."""
        return np.asarray(self.index.asi8, dtype=np.int64)

    @property
    def tick_scale(self) -> tuple[int, int]:
        """``(mul, div)``: a bar's epoch milliseconds are ``ticks[t] * mul // div`` (the floor
        division pandas takes to a coarser unit)."""
        per_ms = NS_PER_UNIT["ms"]
        ns = NS_PER_UNIT[self.index.unit]
        return (ns // per_ms, 1) if ns >= per_ms else (1, per_ms // ns)

    def bar_time_ms(self, t: int) -> int:
        """Bar t's time in epoch milliseconds (negative t counts from the end), without
        converting the whole timeline."""
        mul, div = self.tick_scale
        return int(self.ticks[t]) * mul // div

    @classmethod
    def from_frames(cls, frames: Mapping[str, pd.DataFrame]) -> MarketData:
        if not frames:
            raise DataValidationError("no bars given")
        if len(frames) == 1:
            # One instrument: its validated array is the cube, no re-indexing or copying.
            sym, only = next(iter(frames.items()))
            checked = _validated(only)
            return cls(
                (sym,), checked.times, checked.values[:, None, :], checked.source, rising=True
            )
        clean = {sym: validate_bars(f) for sym, f in frames.items()}
        index = clean[next(iter(clean))].index
        for f in clean.values():
            index = index.union(f.index)
        cube = np.full((len(index), len(clean), len(OHLCV)), np.nan, order="F")
        for i, f in enumerate(clean.values()):
            cube[:, i, :] = f.reindex(index).to_numpy(dtype="float64")
        # a union of validated indexes: sorted, without duplicates
        return cls(tuple(clean), pd.DatetimeIndex(index, name="timestamp"), cube, rising=True)

    @classmethod
    def coerce(cls, data: object, symbol: str = "ASSET") -> MarketData:
        """Accept MarketData, one DataFrame, a mapping of symbol to DataFrame, or a file path."""
        if isinstance(data, MarketData):
            return data
        if isinstance(data, pd.DataFrame):
            return cls.from_frames({symbol: data})
        if isinstance(data, Mapping):
            return cls.from_frames(dict(data))
        if isinstance(data, (str, Path)):
            return cls.from_frames({symbol: read_bars(data)})
        raise DataValidationError(f"cannot use {type(data).__name__} as bars")
