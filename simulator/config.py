"""Fidelity settings of a simulated run (PLATFORM.md §4 "Fidelity")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tradetower.config import FrozenConfig
from tradetower.risk import RiskConfig

COMPAT_MODES = ("backtesting.py",)


class SimConfig(FrozenConfig):
    cash: float = Field(default=10_000.0, ge=0)
    """Starting quote balance."""
    fees: float | None = Field(default=None, ge=0, le=0.1)
    """One fee rate for maker and taker (a fraction: 0.001 = 0.1%); overrides the instrument's."""
    slippage: Literal["none", "fixed", "volume"] = "none"
    slippage_bps: float = Field(default=0.0, ge=0, le=1000)
    """Fixed slippage in basis points, always adverse (market and stop fills only)."""
    impact_factor: float = Field(default=0.1, ge=0)
    """Volume slippage: bps = min(max_bps, impact_factor · qty/bar volume · 1e4)."""
    max_slippage_bps: float = Field(default=50.0, ge=0)
    participation: float = Field(default=0.0, ge=0, le=1)
    """Largest share of a bar's volume one instrument's fills may take (0 = no cap)."""
    intrabar: Literal["default", "conservative"] = "default"
    close_at_end: bool = True
    """Close every open position at the last close when the data ends."""
    liquidation: bool = True
    start_bar: int = Field(default=0, ge=0)
    compat: Literal["backtesting.py"] | None = None
    """Reproduce another backtester's conventions (see simulator.compat)."""
    periods_per_year: int | None = Field(default=None, ge=1, le=100_000)
    risk_free: float = Field(default=0.05, ge=0, le=1)
    max_actions: int = Field(default=256, ge=8, le=100_000)
    capacity: int = Field(default=8192, ge=16)
    """Rows the order and fill logs start with; they double when a run needs more, each time
    leaving the compiled loop to copy them. Rows never written are never touched, so a
    generous start costs address space, not memory: a year of minutes of a 50-level grid
    (about 5,000 orders) no longer grows its logs six times (about 0.8 ms)."""
    risk: RiskConfig | None = None
    """The shared risk rules (STRATEGIES.md §4); None: no pre-trade gate beyond balance and
    minimums, no intra-trade limits."""
