"""The result of a run: pandas views of the logs, the equity curve, metrics, and persistence."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd

from simulator import state as S
from simulator.columns import str_column
from simulator.trades import TradeRows
from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.risk import REJECT_RULES, RULE_NAMES

ORDER_TYPES = {K.MARKET: "MARKET", K.LIMIT: "LIMIT", K.STOP: "STOP"}
ORDER_STATUS = {
    K.ST_OPEN: "OPEN",
    K.ST_FILLED: "FILLED",
    K.ST_CANCELLED: "CANCELLED",
    K.ST_REJECTED: "REJECTED",
}
REASONS = {
    -1: "",
    K.R_USER: "USER",
    K.R_INSUFFICIENT_FUNDS: "INSUFFICIENT_FUNDS",
    K.R_MIN_SIZE: "SKIPPED_MIN",
    K.R_INVALID: "INVALID",
    K.R_IOC_UNFILLED: "IOC_UNFILLED",
    K.R_REDUCE_ONLY: "REDUCE_ONLY",
    K.R_LIQUIDATED: "LIQUIDATED",
    K.R_END: "END_OF_DATA",
    K.R_RISK_NOTIONAL: "RISK_NOTIONAL",
    K.R_RISK_LEVERAGE: "RISK_LEVERAGE",
    K.R_RISK_RATE: "RISK_RATE",
    K.R_RISK_KILLED: "RISK_KILLED",
}
RISK_EVENT_COLUMNS = ("bar", "time", "rule", "action", "value", "equity", "order_id")
COMMAND_NAMES = {
    C.CMD_KILL: "KILL",
    C.CMD_RISK_CLOSE: "RISK_CLOSE",
    C.CMD_PAUSE: "PAUSE",
    C.CMD_RESUME: "RESUME",
}


def labels(
    codes: np.ndarray,
    names: Mapping[int, str] | Sequence[str],
    default: str | Callable[[int], str] = "?",
) -> np.ndarray | pd.Series:
    """``names[code]`` for every code (a mapping, or a sequence indexed from 0; ``default``
    where it has none, or a callable of the code), looked up once per distinct code: a log of
    tens of thousands of rows holds a handful of distinct codes. No codes: an empty float
    array, the column pandas makes of an empty list; else a string column
    (:func:`simulator.columns.str_column`)."""
    at, distinct = pd.factorize(np.asarray(codes, dtype=np.int64))  # hashed: no sort
    if not len(distinct):
        return np.zeros(0)

    def name(code: int) -> str:
        if isinstance(names, Mapping):
            if code in names:
                return names[code]
        elif 0 <= code < len(names):
            return names[code]
        return default(code) if callable(default) else default

    return str_column(at, [name(int(c)) for c in distinct])


def flags(mask: np.ndarray, no: str, yes: str) -> np.ndarray | pd.Series:
    """``np.where(mask, yes, no)`` as a string column, built as :func:`labels` builds one."""
    if not len(mask):
        return np.where(mask, yes, no)
    return str_column(np.asarray(mask, dtype=np.int64), (no, yes))


def orders_frame(o: np.ndarray, symbols: tuple[str, ...], index: pd.DatetimeIndex) -> pd.DataFrame:
    """The orders frame of an order log's rows (``SimState.orders[:n]``)."""
    n = len(o)
    placed = np.clip(o[:, S.O_PLACED_BAR].astype(np.int64), 0, len(index) - 1)
    inst = o[:, S.O_INST].astype(np.int64)
    return pd.DataFrame(
        {
            "order_id": np.arange(n, dtype=np.int64),
            "placed_time": index[placed] if n else pd.DatetimeIndex([], tz="UTC"),
            "placed_bar": o[:, S.O_PLACED_BAR].astype(np.int64),
            "instrument": labels(inst, symbols, ""),
            "side": o[:, S.O_SIDE].astype(np.int64),
            "type": labels(o[:, S.O_TYPE], ORDER_TYPES),
            "price": o[:, S.O_PRICE],
            "qty": o[:, S.O_QTY],
            "filled": o[:, S.O_FILLED],
            "avg_fill_price": o[:, S.O_AVG_FILL],
            "fees": o[:, S.O_FEES],
            "status": labels(o[:, S.O_STATUS], ORDER_STATUS),
            "reason": labels(o[:, S.O_REASON], REASONS, str),
            "done_bar": o[:, S.O_DONE_BAR].astype(np.int64),
            "time_in_force": flags(o[:, S.O_TIF] == K.IOC, "GTC", "IOC"),
            "reduce_only": o[:, S.O_REDUCE] > 0,
            "tag": o[:, S.O_TAG].astype(np.int64),
        }
    )


def fills_frame(f: np.ndarray, symbols: tuple[str, ...], index: pd.DatetimeIndex) -> pd.DataFrame:
    """The fills frame of a fill log's rows as written (``SimState.fills[:n]``)."""
    n = len(f)
    bars = f[:, S.F_BAR].astype(np.int64)
    return pd.DataFrame(
        {
            "timestamp": index[bars] if n else pd.DatetimeIndex([], tz="UTC"),
            "bar": bars,
            "instrument": labels(f[:, S.F_INST], symbols),
            "side": f[:, S.F_SIDE].astype(np.int64),
            "qty": f[:, S.F_QTY],
            "price": f[:, S.F_PRICE],
            "fee": f[:, S.F_FEE],
            "liquidity": flags(f[:, S.F_TAKER] > 0, "MAKER", "TAKER"),
            "order_id": f[:, S.F_ORDER].astype(np.int64),
            "liquidation": f[:, S.F_LIQUIDATION] > 0,
            "slippage_cost": f[:, S.F_SLIPPAGE],
        }
    )


def fill_log(st: S.SimState) -> np.ndarray:
    """The fill log's rows in bar order: as the simulator writes them (checked, not assumed),
    else stably sorted, which keeps each bar's fills in the order they happened."""
    from simulator.nb.curves import fills_in_bar_order_nb

    log: np.ndarray = st.fills[: int(st.counters[S.C_N_FILLS])]
    if not fills_in_bar_order_nb(log, len(log)):
        log = log[np.argsort(log[:, S.F_BAR], kind="stable")]
    return log


@dataclass(frozen=True)
class Curve:
    """What a backtest's metrics need of its per-bar curve: the equity, how many bars held a
    position, and the mean of the finite ratios of gross exposure to equity (None when there
    is none). ``positions`` [n, k] when the pass produced them; else :func:`curve_of` leaves
    them to be rebuilt when first read (:meth:`RunLogs.build`)."""

    equity: np.ndarray
    bars_in_position: int
    exposure_mean: float | None
    positions: np.ndarray | None
    finite: bool
    """Every bar's ratio was finite: the equity holds no NaN (and no zero)."""


def curve_of(
    st: S.SimState,
    cash0: float,
    initial_pos: np.ndarray,
    log: np.ndarray,
    closes: np.ndarray,
) -> Curve:
    """The :class:`Curve` of a finished run. One instrument (``closes``: the market's
    contiguous closes) takes one pass that writes the equity and adds up the exposure ratios
    (:func:`~simulator.nb.curves.equity_exposure_nb`); several take
    :func:`positions_and_equity`."""
    from simulator.nb.curves import equity_exposure_nb
    from simulator.nb.daily import finite_ratios_into_nb

    if st.ohlcv.shape[1] != 1:
        positions, equity, gross, in_pos = positions_and_equity(st, cash0, initial_pos, log, closes)
        gross = np.ascontiguousarray(gross)
        ratios = finite_ratios_into_nb(gross, equity, gross)  # in place: gross is not kept
        mean = float(ratios.mean()) if len(ratios) else None
        finite = len(ratios) == len(equity)
        return Curve(equity, int(np.count_nonzero(in_pos)), mean, positions, finite)
    n = closes.shape[1]
    equity = np.empty(n)  # numpy's allocation: huge pages (see positions_and_equity)
    start = float(np.asarray(initial_pos, dtype=np.float64)[0])
    holding, ratio_sum, n_finite = equity_exposure_nb(
        log, len(log), st.cflow, closes[0], cash0, start, equity
    )
    mean = ratio_sum / n_finite if n_finite else None
    return Curve(equity, int(holding), mean, None, n_finite == n)


def positions_of_log(log: np.ndarray, n: int, start: float) -> np.ndarray:
    """One instrument's positions [n, 1] from its fill log in bar order (the floats of
    :func:`positions_and_equity`), for a result whose curve did not keep them."""
    from simulator.nb.curves import one_instrument_nb

    pos = np.empty((n, 1))
    scratch = np.empty(n)  # the equity and gross of no closes: not kept
    one_instrument_nb(log, len(log), np.zeros(0), np.zeros(n), 0.0, start, scratch, scratch, pos)
    return pos


def positions_and_equity(
    st: S.SimState,
    cash0: float,
    initial_pos: np.ndarray | None = None,
    log: np.ndarray | None = None,
    closes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar positions [n, k], equity [n], gross exposure (the positions' absolute value at
    the closes they were valued at, closes carried forward over missing bars) [n], and whether
    any position is open [n], rebuilt from the fill log.

    Cash and positions change only at fills (and funding), so the curve needs no per-bar work
    inside the event loop. ``log``: :func:`fill_log` of ``st``, when the caller has it.
    ``closes``: ``MarketData.closes`` of the same bars, when the caller has it (one instrument
    then reads those; else the close column of ``st.ohlcv``, the same values).
    """
    from simulator.nb.curves import one_instrument_nb, positions_equity_nb

    k = st.ohlcv.shape[1]
    start = np.zeros(k) if initial_pos is None else np.asarray(initial_pos, dtype=np.float64)
    log = fill_log(st) if log is None else log
    if k == 1:
        n = st.ohlcv.shape[0]
        # Allocated by numpy, not in numba: arrays of 4 MB and more get huge pages, so a year
        # of bars is written faulting in 2 MB at a time, not 4 kB (0.7 ms of 2.1 here).
        pos = np.empty((n, 1))
        equity = np.empty(n)
        gross = np.empty(n)
        close = st.ohlcv[:, 0, 3] if closes is None else closes[0]
        first = float(start[0])
        one_instrument_nb(log, len(log), st.cflow, close, cash0, first, equity, gross, pos)
        return pos, equity, gross, np.abs(pos[:, 0]) > 0
    pos, equity, gross, in_pos, closes = positions_equity_nb(
        log, len(log), st.cflow, st.ohlcv, cash0, start
    )
    if closes.shape[0]:  # many instruments: numpy's own (pairwise) row sums
        gross = np.abs(pos * closes).sum(axis=1)
    return pos, equity, gross, in_pos


@dataclass(frozen=True)
class RunLogs:
    """What a finished run's frames are built from: its logs (views; nothing else of the venue
    state is kept) and the trade rows its metrics were read from."""

    orders: np.ndarray
    fills: np.ndarray
    trades: TradeRows
    positions: np.ndarray | None
    """[n, k]; None: one instrument's, rebuilt from ``in_bar_order`` when first read."""
    symbols: tuple[str, ...]
    index: pd.DatetimeIndex
    in_bar_order: np.ndarray
    """The fill log in bar order (:func:`fill_log`), for the positions."""
    start: float
    """The instrument's holdings before the first bar, for the positions."""

    def build(self, name: str) -> pd.DataFrame:
        if name == "orders":
            return orders_frame(self.orders, self.symbols, self.index)
        if name == "fills":
            return fills_frame(self.fills, self.symbols, self.index)
        if name == "trades":
            return self.trades.frame()
        if name == "positions":
            pos = self.positions
            if pos is None:
                pos = positions_of_log(self.in_bar_order, len(self.index), self.start)
            columns = [f"position_{s}" for s in self.symbols]
            return pd.DataFrame(pos, index=self.index, columns=columns, copy=False)
        raise KeyError(name)


class _Frame:
    """A result frame given to the constructor, or else built on first read and kept: from
    the run's logs, or by ``empty`` for a frame the logs do not hold. A run read only for its
    metrics (a notebook loop, the benchmark) builds no frame, and every frame is the same
    object on every read."""

    def __init__(self, empty: Callable[[], pd.DataFrame] | None = None) -> None:
        self.empty = empty

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Frame: ...
    @overload
    def __get__(self, obj: BacktestResult, owner: type | None = None) -> pd.DataFrame: ...
    def __get__(
        self, obj: BacktestResult | None, owner: type | None = None
    ) -> pd.DataFrame | _Frame:
        if obj is None:
            return self
        frame: pd.DataFrame | None = obj.__dict__.get(self.name)
        if frame is None:
            if self.empty is not None:
                frame = self.empty()
            elif obj.logs is None:
                raise AttributeError(f"this result has no {self.name} frame and no logs")
            else:
                frame = obj.logs.build(self.name)
            obj.__dict__[self.name] = frame
        return frame

    def __set__(self, obj: BacktestResult, frame: pd.DataFrame) -> None:
        obj.__dict__[self.name] = frame


class BacktestResult:
    """Everything a run produced. Frames are plain pandas objects; a backtest's are built
    from its logs when first read (``logs``), or given as they are (a result read back)."""

    orders = _Frame()
    fills = _Frame()
    trades = _Frame()
    positions = _Frame()
    risk_events = _Frame(empty=lambda: empty_risk_events())
    """What the risk rules did (refused orders, commands sent), in time order; empty when
    the run had no risk rules."""

    def __init__(
        self,
        strategy: str,
        params: dict[str, Any],
        symbols: tuple[str, ...],
        metrics: dict[str, Any],
        *,
        equity: pd.Series,
        orders: pd.DataFrame | None = None,
        fills: pd.DataFrame | None = None,
        trades: pd.DataFrame | None = None,
        positions: pd.DataFrame | None = None,
        config: dict[str, Any] | None = None,
        risk_events: pd.DataFrame | None = None,
        logs: RunLogs | None = None,
    ) -> None:
        self.strategy = strategy
        self.params = params
        self.symbols = symbols
        self.metrics = metrics
        self.equity = equity
        self.config: dict[str, Any] = {} if config is None else config
        if risk_events is not None:
            self.risk_events = risk_events
        self.logs = logs
        given = {"orders": orders, "fills": fills, "trades": trades, "positions": positions}
        for name, frame in given.items():
            if frame is not None:
                self.__dict__[name] = frame
            elif logs is None:
                raise TypeError(f"BacktestResult needs {name}= or logs=")

    def __repr__(self) -> str:
        return f"BacktestResult({self.strategy!r} on {', '.join(self.symbols)})"

    def to_json(self) -> str:
        return json.dumps(
            {"strategy": self.strategy, "params": self.params, "metrics": self.metrics},
            allow_nan=False,
            default=str,
        )

    def save(self, folder: str | Path) -> Path:
        """Write orders, fills, trades, equity, risk events when any (Parquet) and result.json
        into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        self.orders.to_parquet(out / "orders.parquet", index=False)
        self.fills.to_parquet(out / "fills.parquet", index=False)
        trades = self.trades.copy()
        if "duration" in trades:
            trades["duration"] = trades["duration"].dt.total_seconds()
        trades.to_parquet(out / "trades.parquet", index=False)
        frame = self.positions.copy()
        frame.insert(0, "equity", self.equity.to_numpy())
        frame.to_parquet(out / "equity.parquet")
        if not self.risk_events.empty:
            self.risk_events.to_parquet(out / "risk_events.parquet", index=False)
        record = {
            "strategy": self.strategy,
            "params": self.params,
            "symbols": list(self.symbols),
            "config": self.config,
            "metrics": self.metrics,
        }
        (out / "result.json").write_text(json.dumps(record, indent=2, allow_nan=False, default=str))
        return out

    def to_vectorbt(self, close: pd.DataFrame | pd.Series, init_cash: float | None = None) -> Any:
        """Replay the fills through ``vectorbt.Portfolio.from_orders`` (vectorbt's toolkit).

        vectorbt is not a dependency of the engine: install it to use this bridge.
        """
        import vectorbt as vbt

        close_df = close.to_frame() if isinstance(close, pd.Series) else close
        # Plain arrays: pandas' copy-on-write makes ``DataFrame.values`` read-only.
        size = np.zeros(close_df.shape)
        price = np.full(close_df.shape, np.nan)
        fees = np.zeros(close_df.shape)
        f = self.fills
        if f.duplicated(["bar", "instrument"]).any():
            raise ValueError("several fills in one bar and instrument cannot map to from_orders")
        cols = np.array([close_df.columns.get_loc(s) for s in f["instrument"]], dtype=np.int64)
        bars = f["bar"].to_numpy(dtype=np.int64)
        qty = f["qty"].to_numpy(dtype=float)
        px = f["price"].to_numpy(dtype=float)
        size[bars, cols] = f["side"].to_numpy(dtype=float) * qty
        price[bars, cols] = px
        fees[bars, cols] = f["fee"].to_numpy(dtype=float) / (qty * px)
        idx, columns = close_df.index, close_df.columns
        return vbt.Portfolio.from_orders(
            close_df,
            size=pd.DataFrame(size, index=idx, columns=columns),
            price=pd.DataFrame(price, index=idx, columns=columns),
            fees=pd.DataFrame(fees, index=idx, columns=columns),
            init_cash=init_cash if init_cash is not None else self.config.get("cash", 10_000.0),
            cash_sharing=True,
            group_by=True,
            freq=None,
        )

    def summary(self) -> str:
        """A readable table of the headline metrics."""
        keys = (
            "final_equity",
            "return_pct",
            "cagr_pct",
            "max_drawdown_pct",
            "sharpe",
            "sortino",
            "calmar",
            "n_trades",
            "win_rate_pct",
            "profit_factor",
            "exposure_pct",
            "fees_paid",
            "buy_and_hold_pct",
            "bars",
            "elapsed_ms",
        )
        lines = [f"{self.strategy} on {', '.join(self.symbols)}"]
        for key in keys:
            if key in self.metrics:
                lines.append(f"  {key:<20} {_fmt(self.metrics[key])}")
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}"
    return str(value)


def empty_risk_events() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in RISK_EVENT_COLUMNS})


def risk_events_frame(
    st: S.SimState, orders: pd.DataFrame, index: pd.DatetimeIndex
) -> pd.DataFrame:
    """The risk log (commands sent: kill switch, drawdown close, daily pause and resume) and the
    orders the pre-trade gate refused, one row each, ordered by bar (commands after the orders
    of their bar, as the loop handles them)."""
    rows: list[dict[str, Any]] = []
    codes = {name: code for code, name in REASONS.items()}
    refused = orders[orders["reason"].map(lambda r: codes.get(r, -1) in REJECT_RULES)]
    for bar, when, reason, qty, oid in zip(
        refused["placed_bar"].tolist(),
        refused["placed_time"].tolist(),
        refused["reason"].tolist(),
        refused["qty"].tolist(),
        refused["order_id"].tolist(),
        strict=True,
    ):
        rows.append(
            {
                "bar": int(bar),
                "time": when,
                "rule": REJECT_RULES[codes[str(reason)]],
                "action": "REJECT",
                "value": float(qty),  # the refused order's quantity
                "equity": float("nan"),
                "order_id": int(oid),
            }
        )
    log = st.risk_log[: int(st.counters[S.C_N_RISK_LOG])]
    for r in log:
        bar = int(r[S.RL_BAR])
        rows.append(
            {
                "bar": bar,
                "time": index[bar],
                "rule": RULE_NAMES[int(r[S.RL_RULE])],
                "action": COMMAND_NAMES.get(int(r[S.RL_COMMAND]), "FLATTEN"),
                "value": float(r[S.RL_VALUE]),
                "equity": float(r[S.RL_EQUITY]),
                "order_id": -1,
            }
        )
    if not rows:
        return empty_risk_events()
    frame = pd.DataFrame(rows, columns=list(RISK_EVENT_COLUMNS))
    frame["_cmd"] = frame["order_id"] < 0
    frame = frame.sort_values(["bar", "_cmd"], kind="stable").drop(columns="_cmd")
    return frame.reset_index(drop=True)


def risk_metrics(events: pd.DataFrame) -> dict[str, int]:
    """Counts of what the risk rules did, by rule."""
    out = {"risk_rejections": int((events["action"] == "REJECT").sum())}
    for rule in ("max_order_notional", "max_leverage", "max_orders_per_minute"):
        out[f"risk_rejected_{rule}"] = int((events["rule"] == rule).sum())
    out["risk_kill_switch"] = int(
        ((events["rule"] == "kill_switch") & (events["action"] == "KILL")).sum()
    )
    out["risk_drawdown_closes"] = int((events["rule"] == "max_drawdown").sum())
    out["risk_daily_pauses"] = int((events["rule"] == "daily_loss").sum())
    return out
