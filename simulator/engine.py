"""``backtest()``: prepare the venue, drive the strategy, construct the result, analyse it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from simulator import state as S
from simulator.compat import apply_compat
from simulator.config import SimConfig
from simulator.driver import Driver
from simulator.metrics import PERIODS_PER_YEAR, compute_metrics
from simulator.nb.signal_bars import signal_bars_nb
from simulator.result import (
    BacktestResult,
    RunLogs,
    curve_of,
    fill_log,
    risk_events_frame,
    risk_metrics,
)
from simulator.trades import trade_rows_of_log
from tradetower.domain.bars import MarketData
from tradetower.domain.instrument import AssetClass, Instrument, _decimals
from tradetower.errors import ConfigError
from tradetower.numba_cache import configure_numba_cache
from tradetower.strategy import KernelStrategy, Strategy

Mode = Literal["auto", "python", "compiled"]


def _instruments(
    symbols: tuple[str, ...],
    instrument: Instrument | Mapping[str, Instrument] | None,
    config: SimConfig,
) -> dict[str, Instrument]:
    if isinstance(instrument, Instrument):
        given = {symbols[0]: instrument} if len(symbols) == 1 else {}
        if len(symbols) > 1:
            raise ConfigError("instrument", "several symbols need a mapping of instruments")
    else:
        given = dict(instrument or {})
    out = {}
    for sym in symbols:
        inst = given.get(sym) or Instrument(symbol=sym)
        if config.fees is not None:
            inst = inst.model_copy(update={"maker_fee": config.fees, "taker_fee": config.fees})
        out[sym] = inst
    return out


def instrument_table(instruments: dict[str, Instrument]) -> np.ndarray:
    table = np.zeros((len(instruments), S.N_INST))
    for i, inst in enumerate(instruments.values()):
        table[i, S.I_TICK] = inst.tick
        table[i, S.I_LOT] = inst.lot
        table[i, S.I_MIN_QTY] = inst.min_qty
        table[i, S.I_MIN_NOTIONAL] = inst.min_notional
        table[i, S.I_MAKER] = inst.maker_fee
        table[i, S.I_TAKER] = inst.taker_fee
        table[i, S.I_LEVERAGE] = inst.leverage
        table[i, S.I_MARGIN] = 1.0 if inst.is_margin else 0.0
        table[i, S.I_TICK_DEC] = _decimals(inst.tick)
        table[i, S.I_LOT_DEC] = _decimals(inst.lot)
    return table


def sim_params(config: SimConfig, wants_bars: bool, kill_bar: int = -1) -> np.ndarray:
    p = np.zeros(S.N_PARAMS)
    p[S.P_CASH0] = config.cash
    p[S.P_SLIP_MODE] = {"none": S.SLIP_NONE, "fixed": S.SLIP_FIXED, "volume": S.SLIP_VOLUME}[
        config.slippage
    ]
    if config.slippage == "none" and config.slippage_bps > 0:
        p[S.P_SLIP_MODE] = S.SLIP_FIXED
    p[S.P_SLIP_BPS] = config.slippage_bps
    p[S.P_IMPACT] = config.impact_factor
    p[S.P_MAX_BPS] = config.max_slippage_bps
    p[S.P_PARTICIPATION] = config.participation
    p[S.P_INTRABAR] = 1.0 if config.intrabar == "conservative" else 0.0
    p[S.P_WANTS_BARS] = 1.0 if wants_bars else 0.0
    p[S.P_START_BAR] = config.start_bar
    p[S.P_LIQUIDATION] = 1.0 if config.liquidation else 0.0
    p[S.P_MAX_ACTIONS] = config.max_actions
    risk = config.risk
    if risk is not None:
        p[S.P_RISK_NOTIONAL] = risk.max_order_notional or 0.0
        p[S.P_RISK_LEVERAGE] = risk.max_leverage or 0.0
        p[S.P_RISK_RATE] = risk.max_orders_per_minute or 0
        p[S.P_RISK_SPACING] = risk.min_order_spacing_ms
        p[S.P_RISK_DRAWDOWN] = risk.max_drawdown_pct or 0.0
        p[S.P_RISK_DAILY_LOSS] = risk.daily_loss_limit or 0.0
    p[S.P_KILL_BAR] = kill_bar
    return p


def kill_bar_of(kill_at: int | str | pd.Timestamp | None, market: MarketData) -> int:
    """The bar at whose close the kill switch trips: a bar number, or the first bar at or after
    a timestamp (UTC when naive); -1 for none."""
    if kill_at is None:
        return -1
    if isinstance(kill_at, (int, np.integer)) and not isinstance(kill_at, bool):
        bar = int(kill_at)
        if not 0 <= bar < market.n_bars:
            raise ConfigError("kill_at", f"bar {bar} is outside 0..{market.n_bars - 1}")
        return bar
    try:
        ts = pd.Timestamp(kill_at)
    except (TypeError, ValueError):
        raise ConfigError(
            "kill_at", f"must be a bar number or a timestamp (got {kill_at!r})"
        ) from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    bar = int(np.searchsorted(market.index.as_unit("ns").asi8, ts.as_unit("ns").value))
    if bar >= market.n_bars:
        raise ConfigError("kill_at", f"{ts} is after the last bar ({market.index[-1]})")
    return bar


def _signals(strategy: Strategy, data: MarketData) -> np.ndarray | None:
    raw = strategy.signals(data)
    if raw is None:
        return None
    arr = np.asarray(raw)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[0] != data.n_bars or arr.shape[1] != len(data.symbols):
        raise ConfigError(
            "signals",
            f"{type(strategy).__name__}.signals returned shape {arr.shape}, "
            f"expected ({data.n_bars}, {len(data.symbols)})",
        )
    if np.issubdtype(arr.dtype, np.integer):  # already codes: no NaN to clear, no copy needed
        return np.ascontiguousarray(arr, dtype=np.int64)
    return np.ascontiguousarray(np.nan_to_num(arr, nan=0.0).astype(np.int64))


MAX_PRESIZED_ROWS = 1 << 16
"""The most rows :func:`_log_rows` starts a log with (about 15 MB of orders and fills): a
strategy that emits a code on every bar but trades rarely must not allocate a log per bar."""


def _log_rows(capacity: int, sig_bars: np.ndarray | None) -> int:
    """Rows the order and fill logs start with: a signal strategy places about an order per
    signal, so its logs start that long (up to :data:`MAX_PRESIZED_ROWS`) instead of doubling,
    and copying, their way there. ``sig_bars``: the bars holding a signal, then the end
    (:func:`~simulator.nb.signal_bars.signal_bars_nb`). Logs still grow past it when a run
    needs more."""
    if sig_bars is None:
        return capacity
    expected = int(sig_bars.shape[0]) - 1
    return max(capacity, min(expected + expected // 4 + 256, MAX_PRESIZED_ROWS))


def _funding(
    funding: pd.Series | Mapping[str, pd.Series] | None, data: MarketData
) -> np.ndarray | None:
    """Align funding rates to bars: each rate is paid at the first bar at or after its time."""
    if funding is None:
        return None
    series = {data.symbols[0]: funding} if isinstance(funding, pd.Series) else dict(funding)
    out = np.zeros((data.n_bars, len(data.symbols)))
    ns = data.index.as_unit("ns").asi8
    for sym, s in series.items():
        if sym not in data.symbols:
            raise ConfigError("funding", f"funding for unknown symbol {sym!r}")
        idx = pd.DatetimeIndex(s.index)
        idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
        pos = np.searchsorted(ns, idx.as_unit("ns").asi8, side="left")
        keep = pos < len(ns)
        np.add.at(out[:, data.symbols.index(sym)], pos[keep], s.to_numpy(dtype=float)[keep])
    return out


def backtest(
    strategy: Strategy,
    data: Any,
    *,
    instrument: Instrument | Mapping[str, Instrument] | None = None,
    funding: pd.Series | Mapping[str, pd.Series] | None = None,
    holdings: Mapping[str, float] | None = None,
    mode: Mode = "auto",
    symbol: str = "ASSET",
    config: SimConfig | None = None,
    kill_at: int | str | pd.Timestamp | None = None,
    **settings: Any,
) -> BacktestResult:
    """Run ``strategy`` over ``data`` on the simulated exchange.

    ``data`` is a DataFrame of bars, a mapping of symbol to DataFrame, a file path or
    :class:`MarketData`. ``holdings`` is base the account holds at the start, by symbol (a
    spot seller such as BTD needs it; valued at the first close). ``settings`` are
    :class:`SimConfig` fields (``cash``, ``fees``, ``slippage_bps``, ``participation``,
    ``intrabar``, ``compat``...). ``mode`` picks the driver: ``compiled`` keeps a kernel
    strategy inside numba, ``python`` calls back at every event; ``auto`` compiles when it can.
    ``risk`` (a :class:`~tradetower.risk.RiskConfig`) turns the shared risk rules on;
    ``kill_at`` (a bar number or a timestamp) trips the kill switch at that bar's close. What
    the risk rules did is in ``result.risk_events``.
    """
    run = prepare_run(
        strategy, data, instrument, funding, holdings, symbol, config, settings, kill_at
    )
    run.drive(mode)
    return run.finish()


@dataclass
class PreparedRun:
    """A backtest set up and ready to drive: what :func:`backtest` and the checkpoints of
    :mod:`simulator.checkpoint` share."""

    strategy: Strategy
    cfg: SimConfig
    market: MarketData
    instruments: dict[str, Instrument]
    driver: Driver
    initial_pos: np.ndarray
    started: float
    elapsed_ms: float = 0.0
    kill_bar: int = -1

    def drive(self, mode: Mode) -> None:
        use_compiled = mode == "compiled" or (
            mode == "auto" and isinstance(self.strategy, KernelStrategy)
        )
        if use_compiled:
            self.driver.run_compiled()
        else:
            self.driver.run_python()

    def finish(self) -> BacktestResult:
        self.driver.stop(self.cfg.close_at_end)
        elapsed_ms = self.elapsed_ms + (time.perf_counter() - self.started) * 1e3
        result = build_result(
            self.strategy,
            self.driver.state,
            self.market,
            self.instruments,
            self.cfg,
            elapsed_ms,
            self.initial_pos,
        )
        if self.cfg.risk is not None or self.kill_bar >= 0:
            result.risk_events = risk_events_frame(
                self.driver.state, result.orders, self.market.index
            )
            result.metrics.update(risk_metrics(result.risk_events))
            result.config["kill_bar"] = self.kill_bar if self.kill_bar >= 0 else None
        return result


def prepare_run(
    strategy: Strategy,
    data: Any,
    instrument: Instrument | Mapping[str, Instrument] | None,
    funding: pd.Series | Mapping[str, pd.Series] | None,
    holdings: Mapping[str, float] | None,
    symbol: str,
    config: SimConfig | None,
    settings: Mapping[str, Any],
    kill_at: int | str | pd.Timestamp | None = None,
) -> PreparedRun:
    """Validate everything and allocate the venue state (see :func:`backtest`)."""
    configure_numba_cache()
    cfg = SimConfig.parse({**(config.model_dump() if config else {}), **settings})
    market = MarketData.coerce(data, symbol)
    instruments = _instruments(market.symbols, instrument, cfg)
    cfg, instruments = apply_compat(cfg, instruments)
    if cfg.start_bar >= market.n_bars:
        raise ConfigError("start_bar", f"must be below the number of bars ({market.n_bars})")
    kill_bar = kill_bar_of(kill_at, market)
    adopt = getattr(strategy, "adopt_compat", None)
    if cfg.compat is not None and callable(adopt):
        adopt(cfg.compat)
    started = time.perf_counter()
    if isinstance(strategy, KernelStrategy):
        strategy.prepare(market)
    check = getattr(strategy, "check", None)
    if callable(check):
        check(instruments)
    signals = _signals(strategy, market)
    sig_bars = None if signals is None else signal_bars_nb(signals)
    state = S.allocate(
        market.ohlcv,
        market.ticks,
        instrument_table(instruments),
        sim_params(cfg, strategy.wants_bars, kill_bar),
        funding=_funding(funding, market),
        signals=signals,
        capacity=_log_rows(cfg.capacity, sig_bars),
        streams=market.built_streams(),
        sig_bars=sig_bars,
        time_scale=market.tick_scale,
    )
    initial_pos = _holdings(holdings, market)
    state.pos[:, S.PS_QTY] = initial_pos
    state.pos[:, S.PS_AVG] = np.where(initial_pos != 0, market.ohlcv[0, :, 3], 0.0)
    driver = Driver(state, strategy, market.symbols, tuple(instruments.values()))
    return PreparedRun(
        strategy, cfg, market, instruments, driver, initial_pos, started, kill_bar=kill_bar
    )


def _holdings(holdings: Mapping[str, float] | None, market: MarketData) -> np.ndarray:
    out = np.zeros(len(market.symbols))
    for sym, qty in (holdings or {}).items():
        if sym not in market.symbols:
            raise ConfigError("holdings", f"holdings for unknown symbol {sym!r}")
        if not qty >= 0:
            raise ConfigError("holdings", f"holdings of {sym} must be ≥ 0 (got {qty})")
        out[market.symbols.index(sym)] = qty
    return out


def build_result(
    strategy: Strategy,
    st: S.SimState,
    market: MarketData,
    instruments: dict[str, Instrument],
    cfg: SimConfig,
    elapsed_ms: float,
    initial_pos: np.ndarray | None = None,
) -> BacktestResult:
    """The result of a finished run: the equity curve and the metrics now, from the logs and
    the trade rows; the orders, fills, trades and positions frames when first read."""
    symbols = market.symbols
    index = market.index
    order_log = st.orders[: int(st.counters[S.C_N_ORDERS])]
    written = st.fills[: int(st.counters[S.C_N_FILLS])]
    log = fill_log(st)
    start = np.zeros(len(symbols)) if initial_pos is None else initial_pos
    curve = curve_of(st, cfg.cash, start, log, market.closes)
    last = [market.last_close(i) for i in range(len(symbols))]
    marks = {s: np.nan if c is None else c for s, c in zip(symbols, last, strict=True)}
    trades = trade_rows_of_log(log, symbols, index, marks, len(index) - 1)
    equity_s = pd.Series(curve.equity, index=index, name="equity", copy=False)  # ours alone
    first = instruments[symbols[0]]
    ppy = cfg.periods_per_year or (
        PERIODS_PER_YEAR["crypto"]
        if first.asset_class in (AssetClass.CRYPTO_SPOT, AssetClass.CRYPTO_FUTURES)
        else PERIODS_PER_YEAR["equity"]
    )
    first_open = market.first_open()
    metrics = compute_metrics(
        equity_s,
        trades,
        in_position=curve.bars_in_position,
        fees_paid=float(st.account[S.AC_FEES]),
        periods_per_year=ppy,
        risk_free=cfg.risk_free,
        n_orders=len(order_log),
        n_fills=len(written),
        first_open=first_open,
        last_close=marks[symbols[0]],
        exposure_mean=curve.exposure_mean,
        curve_checked=market.rising and curve.finite,
    )
    metrics["funding_paid"] = float(-st.account[S.AC_FUNDING])
    metrics["slippage_cost"] = float(st.account[S.AC_SLIPPAGE])
    metrics["n_liquidations"] = int(np.count_nonzero(written[:, S.F_LIQUIDATION] > 0))
    metrics["elapsed_ms"] = round(elapsed_ms, 3)
    for key, value in json_safe(strategy.metrics()).items():
        # A strategy's own figures never replace the engine's (they keep a bot_ prefix).
        metrics[f"bot_{key}" if key in metrics else key] = value
    params = strategy_params(strategy)
    return BacktestResult(
        strategy=getattr(strategy, "name", type(strategy).__name__),
        params=params,
        symbols=symbols,
        metrics=metrics,
        equity=equity_s,
        logs=RunLogs(
            order_log, written, trades, curve.positions, symbols, index, log, float(start[0])
        ),
        config={
            **cfg.model_dump(),
            "instruments": {s: i.model_dump(mode="json") for s, i in instruments.items()},
        },
    )


def json_safe(value: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, non-finite floats to None (JSON null)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def strategy_params(strategy: Strategy) -> dict[str, Any]:
    cfg = getattr(strategy, "config", None)
    if cfg is not None and hasattr(cfg, "model_dump"):
        dumped: dict[str, Any] = cfg.model_dump(mode="json")
        return dumped
    return {}
