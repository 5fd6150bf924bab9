"""FIFO round trips from fills (PLATFORM.md §4 "Metrics", STRATEGIES.md §1 "PnL").

A *trade* is one entry lot matched against one exit fill. Every fill opens at most one lot per
instrument (the quantity left after it has closed the opposite lots), so lots opened by the same
fill are merged by construction: one entry fill closed by one exit fill gives exactly one row, an
entry closed by two exit fills gives two rows, and one exit fill that closes two entry lots gives
two rows.

Fees are pro-rated by quantity on both sides: a row carries ``entry_fee · q / entry_fill_qty`` and
``exit_fee · q / exit_fill_qty`` for its matched quantity ``q``. A fill that reverses a position
closes the old lots with its first part and opens a new lot with the remainder; its fee is split
the same way. ``pnl`` is net of both fees, as everywhere in the project.

Lots still open after the last fill are reported with ``is_open=True``: when a mark price is given
for the instrument they are marked to it (``exit_price`` = mark, ``exit_fees`` = 0, ``pnl`` =
unrealized PnL net of the pro-rated entry fees); otherwise ``exit_price``, ``gross_pnl``, ``pnl``
and ``return_pct`` are NaN. Their ``exit_time`` / ``exit_bar`` are ``mark_time`` / ``mark_bar``
when given, else NaT / -1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator import state as S
from simulator.columns import str_column
from tradetower.domain.epoch import NS_PER_UNIT

__all__ = ["FILL_COLUMNS", "TRADE_COLUMNS", "TradeRows", "fills_to_trades", "trade_rows_of_log"]

FILL_COLUMNS: tuple[str, ...] = ("timestamp", "bar", "instrument", "side", "qty", "price", "fee")

TRADE_COLUMNS: tuple[str, ...] = (
    "instrument",
    "direction",
    "qty",
    "entry_time",
    "exit_time",
    "entry_bar",
    "exit_bar",
    "entry_price",
    "exit_price",
    "entry_fees",
    "exit_fees",
    "gross_pnl",
    "pnl",
    "return_pct",
    "duration",
    "is_open",
)

# A lot or fill remainder at or below this fraction of its original quantity is float residue
# from repeated subtraction, not a position: it is treated as fully consumed.
_QTY_RTOL = 1e-12

_NAT_NS = np.iinfo(np.int64).min  # the int64 value of NaT


@dataclass(slots=True)
class TradeRows:
    """The trade rows as arrays, before any pandas: what the metrics read, and what the trades
    frame is built from (:meth:`frame`). Times are int64 UTC nanoseconds (NaT's value where an
    open lot has no mark time)."""

    inst: np.ndarray  # codes into ``symbols``
    symbols: list[str]
    long: np.ndarray  # bool: a long lot
    qty: np.ndarray
    entry_time: np.ndarray
    exit_time: np.ndarray
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    entry_fees: np.ndarray
    exit_fees: np.ndarray
    is_open: np.ndarray

    def frame(self) -> pd.DataFrame:
        """The trades frame, with the columns of ``TRADE_COLUMNS``."""
        return _frame(self)

    def net_pnl(self) -> np.ndarray:
        """Each row's ``pnl`` column: gross PnL less both pro-rated fees."""
        return _pnl(self)[1]


def _utc_ns(values: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """int64 nanoseconds since the epoch (UTC); tz-naive input is taken as UTC."""
    idx = pd.DatetimeIndex(values)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)


def _ns_to_utc(values: np.ndarray) -> pd.DatetimeIndex:
    arr = np.asarray(values, dtype=np.int64).view("datetime64[ns]")
    return pd.DatetimeIndex(arr).tz_localize("UTC")


def _validate(fills: pd.DataFrame) -> None:
    missing = [c for c in FILL_COLUMNS if c not in fills.columns]
    if missing:
        raise ValueError(f"fills lacks columns {missing}")
    side = fills["side"].to_numpy()
    if not np.isin(side, (1, -1)).all():
        raise ValueError("fills.side must be +1 (buy) or -1 (sell)")
    qty = fills["qty"].to_numpy(dtype=np.float64)
    if not (np.isfinite(qty) & (qty > 0)).all():
        raise ValueError("fills.qty must be finite and > 0")
    fee = fills["fee"].to_numpy(dtype=np.float64)
    if not (np.isfinite(fee) & (fee >= 0)).all():
        raise ValueError("fills.fee must be finite and >= 0")
    if not np.isfinite(fills["price"].to_numpy(dtype=np.float64)).all():
        raise ValueError("fills.price must be finite")


def fills_to_trades(
    fills: pd.DataFrame,
    mark_prices: Mapping[str, float] | None = None,
    *,
    mark_time: pd.Timestamp | None = None,
    mark_bar: int | None = None,
) -> pd.DataFrame:
    """FIFO round trips per instrument, long and short, with fees pro-rated by quantity.

    ``fills`` has the columns ``timestamp, bar, instrument, side (+1/-1), qty (> 0), price,
    fee (>= 0, quote)``; they are processed in timestamp order (stable, so ties keep their row
    order). Returns one row per (entry lot, exit fill) pair, closed trades in the order they were
    closed, then the open lots in entry order, with the columns of ``TRADE_COLUMNS``.
    """
    _validate(fills)
    ordered = fills.sort_values("timestamp", kind="stable") if len(fills) else fills
    # Instruments numbered in order of first appearance, one pass in pandas (not per fill).
    found, distinct = pd.factorize(ordered["instrument"].to_numpy(), use_na_sentinel=False)
    names: dict[str, int] = {}
    for name in distinct:
        names.setdefault(str(name), len(names))
    remap = np.array([names[str(name)] for name in distinct], dtype=np.int64)
    return _matched(
        remap[found] if len(found) else np.zeros(0, dtype=np.int64),
        list(names),
        ordered["side"].to_numpy(dtype=np.int64),
        ordered["qty"].to_numpy(dtype=np.float64),
        ordered["price"].to_numpy(dtype=np.float64),
        ordered["fee"].to_numpy(dtype=np.float64),
        _utc_ns(ordered["timestamp"]),
        ordered["bar"].to_numpy(dtype=np.int64),
        mark_prices,
        None if mark_time is None else int(_utc_ns(pd.DatetimeIndex([mark_time]))[0]),
        mark_bar,
    ).frame()


def trades_of_log(
    log: np.ndarray,
    symbols: tuple[str, ...],
    index: pd.DatetimeIndex,
    mark_prices: Mapping[str, float] | None = None,
    mark_bar: int | None = None,
) -> pd.DataFrame:
    """:func:`fills_to_trades` of a simulator's fill log (rows ``[F_*]`` in bar order:
    ``simulator.result.fill_log``), read straight from the log instead of a fills frame: the
    frame's columns are then neither selected, checked, sorted nor converted again. Bar order
    is time order, so the frame's stable sort by timestamp would keep this order too."""
    return trade_rows_of_log(log, symbols, index, mark_prices, mark_bar).frame()


def trade_rows_of_log(
    log: np.ndarray,
    symbols: tuple[str, ...],
    index: pd.DatetimeIndex,
    mark_prices: Mapping[str, float] | None = None,
    mark_bar: int | None = None,
) -> TradeRows:
    """The rows of :func:`trades_of_log`, as arrays (no frame built)."""
    bars = log[:, S.F_BAR].astype(np.int64)
    ticks = np.asarray(index.asi8, dtype=np.int64)
    times = ticks[bars] * NS_PER_UNIT[index.unit] if len(index) else ticks[:0]
    # Instruments numbered in order of first appearance: hashing the log's integer codes, not
    # the symbols' strings (a third of the time of the whole matching). One instrument's fills
    # are all its own: nothing to number (pandas' factorize alone costs 0.1 ms or more).
    if len(symbols) == 1:
        found, distinct = np.zeros(len(log), dtype=np.int64), np.zeros(min(len(log), 1))
    else:
        found, distinct = pd.factorize(log[:, S.F_INST].astype(np.int64))
    return _matched(
        found.astype(np.int64, copy=False),
        [symbols[int(c)] for c in distinct],
        log[:, S.F_SIDE].astype(np.int64),
        np.ascontiguousarray(log[:, S.F_QTY]),
        np.ascontiguousarray(log[:, S.F_PRICE]),
        np.ascontiguousarray(log[:, S.F_FEE]),
        times,
        bars,
        mark_prices,
        int(ticks[-1]) * NS_PER_UNIT[index.unit] if len(index) else None,
        mark_bar,
    )


def _matched(
    codes: np.ndarray,
    symbols: list[str],
    sides: np.ndarray,
    qtys: np.ndarray,
    prices: np.ndarray,
    fees: np.ndarray,
    times: np.ndarray,
    bars: np.ndarray,
    mark_prices: Mapping[str, float] | None,
    mark_ns: int | None,
    mark_bar: int | None,
) -> TradeRows:
    """FIFO matching of fills already in time order, one array per column; ``codes`` number
    the instruments ``symbols`` in order of first appearance. Open lots are marked at
    ``mark_ns`` (UTC epoch nanoseconds; NaT when None)."""
    from simulator.nb.fifo import fifo_match_nb

    (
        lot,
        inst,
        q,
        exit_ns,
        exit_bar,
        exit_px,
        exit_fee,
        entry_fee,
        lot_dir,
        lot_px,
        lot_ns,
        lot_bar,
        n_closed,
    ) = fifo_match_nb(codes, sides, qtys, prices, fees, times, bars, len(symbols))
    is_open = np.arange(len(q)) >= n_closed
    if is_open.any():
        open_ns = _NAT_NS if mark_ns is None else mark_ns
        marks = np.full(len(symbols), np.nan)
        for k, name in enumerate(symbols):
            if mark_prices is not None and name in mark_prices:
                marks[k] = float(mark_prices[name])
        exit_ns = np.where(is_open, open_ns, exit_ns)
        exit_bar = np.where(is_open, -1 if mark_bar is None else int(mark_bar), exit_bar)
        exit_px = np.where(is_open, marks[inst], exit_px)
        exit_fee = np.where(is_open, 0.0, exit_fee)
    return TradeRows(
        inst=inst,
        symbols=symbols,
        long=lot_dir[lot] > 0,
        qty=q,
        entry_time=lot_ns[lot],
        exit_time=exit_ns,
        entry_bar=lot_bar[lot],
        exit_bar=exit_bar,
        entry_price=lot_px[lot],
        exit_price=exit_px,
        entry_fees=entry_fee,
        exit_fees=exit_fee,
        is_open=is_open,
    )


def _pnl(rows: TradeRows) -> tuple[np.ndarray, np.ndarray]:
    """(gross PnL, net PnL) of every row."""
    direction = np.where(rows.long, 1.0, -1.0)
    gross = direction * (rows.exit_price - rows.entry_price) * rows.qty
    return gross, gross - rows.entry_fees - rows.exit_fees


def _frame(rows: TradeRows) -> pd.DataFrame:
    qty = np.asarray(rows.qty, dtype=np.float64)
    entry_price = np.asarray(rows.entry_price, dtype=np.float64)
    exit_price = np.asarray(rows.exit_price, dtype=np.float64)
    entry_fees = np.asarray(rows.entry_fees, dtype=np.float64)
    exit_fees = np.asarray(rows.exit_fees, dtype=np.float64)
    gross, net = _pnl(rows)
    notional = entry_price * qty
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(notional != 0, net / notional * 100.0, np.nan)
    entry_time = _ns_to_utc(rows.entry_time)
    exit_time = _ns_to_utc(rows.exit_time)
    return pd.DataFrame(
        {
            "instrument": str_column(rows.inst, rows.symbols),
            "direction": str_column(np.where(rows.long, 0, 1), ("LONG", "SHORT")),
            "qty": qty,
            "entry_time": entry_time,
            "exit_time": exit_time,
            "entry_bar": np.asarray(rows.entry_bar, dtype=np.int64),
            "exit_bar": np.asarray(rows.exit_bar, dtype=np.int64),
            "entry_price": entry_price,
            "exit_price": exit_price,
            "entry_fees": entry_fees,
            "exit_fees": exit_fees,
            "gross_pnl": gross,
            "pnl": net,
            "return_pct": ret,
            "duration": exit_time - entry_time,
            "is_open": np.asarray(rows.is_open, dtype=bool),
        },
        columns=list(TRADE_COLUMNS),
    )
