"""Compatibility modes: reproduce another backtester's conventions on our engine.

``backtesting.py``: market orders fill at the next bar's open (our default), commission is a
fraction of traded value on entry and exit, sizes are whole units, shorting is allowed with
margin 1 (no leverage), positions still open at the end stay open (equity is marked to the
last close), and there is no liquidation.
"""

from __future__ import annotations

from simulator.config import SimConfig
from tradetower.domain.instrument import Instrument


def apply_compat(
    config: SimConfig, instruments: dict[str, Instrument]
) -> tuple[SimConfig, dict[str, Instrument]]:
    if config.compat is None:
        return config, instruments
    if config.compat == "backtesting.py":
        fee = config.fees if config.fees is not None else 0.0
        adjusted = {
            sym: inst.model_copy(
                update={
                    "lot": 1.0,
                    "min_qty": 1.0,
                    "margin": True,
                    "leverage": 1.0,
                    "maker_fee": fee,
                    "taker_fee": fee,
                }
            )
            for sym, inst in instruments.items()
        }
        return config.replace(close_at_end=False, liquidation=False), adjusted
    raise ValueError(f"unknown compat mode {config.compat!r}")
