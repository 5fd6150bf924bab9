"""Compatibility modes: reproduce another backtester's conventions on our engine.

``backtesting.py`` (``Backtest(data, strategy, cash=..., commission=c)`` with its defaults
``spread=0, margin=1, trade_on_close=False, hedging=False, exclusive_orders=False,
finalize_trades=False``), checked trade by trade against the real package in
``tests/peers/test_backtesting_compat.py``:

* Market orders placed at bar t's close fill at bar t+1's open (our default too). Orders queued
  in the same bar fill in the order they were placed, so ``position.close(); buy()`` closes at the
  open and then sizes the new entry on the cash that close left.
* Commission ``c`` is a fraction of traded value, charged on entry and on exit at the fill price:
  the instrument's taker rate (``fees`` when given) becomes both maker and taker rate.
* Sizes are whole units (lot 1, minimum 1 unit); a fraction-of-equity order buys
  ``floor(equity · fraction / (price · (1 + c)))`` units and is cancelled when that is 0. (One
  known gap: backtesting.py's default ``buy()`` fraction is ``1 − 2⁻⁵²`` and it floors exactly,
  so where cash buys an exact whole number of units it takes one unit less than we do.)
  No price tick and no minimum notional: backtesting.py rounds no prices.
* Shorting is always allowed, with margin 1 (no leverage) and no liquidation.
* Positions still open at the end stay open (no closing fill) and are marked to the last close;
  they are not counted as trades. Orders placed at the last bar never fill.

Settings that backtesting.py has no counterpart for are refused rather than silently dropped:
slippage (its ``spread`` moves entry prices only, never exits), a volume participation cap, and
leverage above 1 (its ``margin < 1`` sizes entries as ``floor(equity · L / (price · (1 + c)))``
while our margin check reserves the fee at leverage too, ``price · (1 + c · L)``).
"""

from __future__ import annotations

from simulator.config import SimConfig
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError


def _backtesting_py(
    config: SimConfig, instruments: dict[str, Instrument]
) -> tuple[SimConfig, dict[str, Instrument]]:
    if config.slippage != "none" or config.slippage_bps > 0:
        raise ConfigError(
            "slippage_bps",
            "compat backtesting.py: backtesting.py has no slippage (its spread moves entry "
            "prices only); leave slippage at 0",
        )
    if config.participation > 0:
        raise ConfigError(
            "participation",
            "compat backtesting.py: backtesting.py fills whole orders regardless of volume; "
            "leave participation at 0",
        )
    for sym, inst in instruments.items():
        if inst.leverage > 1:
            raise ConfigError(
                "leverage",
                f"compat backtesting.py: {sym} has leverage {inst.leverage:g}; only margin 1 "
                "(no leverage) sizes positions as backtesting.py does",
            )
    adjusted = {
        sym: inst.model_copy(
            update={
                "tick": 0.0,
                "lot": 1.0,
                "min_qty": 1.0,
                "min_notional": 0.0,
                "margin": True,
                "leverage": 1.0,
                # One commission rate: ``fees`` when given (already on the instrument), else
                # the instrument's taker rate, the rate of its market orders.
                "maker_fee": inst.taker_fee,
                "taker_fee": inst.taker_fee,
            }
        )
        for sym, inst in instruments.items()
    }
    return config.replace(close_at_end=False, liquidation=False), adjusted


def apply_compat(
    config: SimConfig, instruments: dict[str, Instrument]
) -> tuple[SimConfig, dict[str, Instrument]]:
    if config.compat is None:
        return config, instruments
    if config.compat == "backtesting.py":
        return _backtesting_py(config, instruments)
    raise ValueError(f"unknown compat mode {config.compat!r}")
