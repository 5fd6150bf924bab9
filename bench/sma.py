"""Case 1: SMA crossover 10/50, signals included (moving averages, crossing detection,
simulation), long-only with 0.1% fees, on the same bars for every peer.

* ours: ``backtest(SmaCross(fast=10, slow=50), bars, fees=0.001, mode="compiled")``, timed end
  to end (validation, signals, simulation, result frames and metrics); its own ``elapsed_ms``
  (signals and simulation, no result building) is reported as the core;
* vectorbt: ``MA.run`` twice, ``ma_crossed_above/below`` and ``Portfolio.from_signals``;
* backtesting.py: its ``SMA`` indicator and ``crossover`` rule in a ``Strategy``.

Conventions differ a little and are left as each peer has them: vectorbt fills at the close of
the signal bar, ours and backtesting.py at the next open (in these bars each open is the previous
close, so the prices agree). backtesting.py sizes in whole units: its ``FractionalBacktest``
trades units of 1e-8 so that, as with the others, every crossing trades however small the
account gets. The trade counts show the three took the same crossings.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.data import naive

FAST = 10
SLOW = 50
FEES = 0.001
CASH = 10_000.0


def run_ours(bars: pd.DataFrame) -> tuple[int, float, float]:
    """(trades, final equity, core seconds)."""
    from simulator import backtest
    from strategies import SmaCross

    r = backtest(SmaCross(fast=FAST, slow=SLOW), bars, fees=FEES, cash=CASH, mode="compiled")
    m = r.metrics
    return int(m["n_trades"]), float(m["final_equity"]), float(m["elapsed_ms"]) / 1e3


def run_vectorbt(close: pd.Series, stats: bool = False) -> tuple[int, float]:
    """(trades, final equity). Give ``close`` a tz-naive index (:func:`bench.data.naive`).
    ``stats``: also compute vectorbt's report (``pf.stats()``: returns, drawdowns, trade
    figures, Sharpe, Sortino, Calmar...), the work our end-to-end call does for its metrics."""
    import vectorbt as vbt

    fast = vbt.MA.run(close, FAST)
    slow = vbt.MA.run(close, SLOW)
    entries = fast.ma_crossed_above(slow)
    exits = fast.ma_crossed_below(slow)
    pf = vbt.Portfolio.from_signals(close, entries, exits, fees=FEES, init_cash=CASH, freq="1min")
    if stats:
        report = pf.stats()
        return int(report["Total Trades"]), float(report["End Value"])
    return int(pf.trades.count()), float(pf.final_value())


_BT_STRATEGY: Any = None


def _btpy_strategy() -> Any:
    global _BT_STRATEGY
    if _BT_STRATEGY is None:
        from backtesting import Strategy
        from backtesting.lib import crossover
        from backtesting.test import SMA

        class BtSmaCross(Strategy):  # type: ignore[misc]
            fast = FAST
            slow = SLOW

            def init(self) -> None:
                self.sma1 = self.I(SMA, self.data.Close, self.fast)
                self.sma2 = self.I(SMA, self.data.Close, self.slow)

            def next(self) -> None:
                if crossover(self.sma1, self.sma2):
                    if not self.position:
                        self.buy()
                elif crossover(self.sma2, self.sma1) and self.position:
                    self.position.close()

        _BT_STRATEGY = BtSmaCross
    return _BT_STRATEGY


def btpy_frame(bars: pd.DataFrame) -> pd.DataFrame:
    frame = bars.rename(columns=str.capitalize)
    return naive(frame)


def run_backtesting(frame: pd.DataFrame) -> tuple[int, float]:
    """(trades, final equity) with backtesting.py on a frame from :func:`btpy_frame`."""
    import warnings

    from backtesting.lib import FractionalBacktest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(frame, _btpy_strategy(), cash=CASH, commission=FEES)
        stats = bt.run()
    return int(stats["# Trades"]), float(stats["Equity Final [$]"])
