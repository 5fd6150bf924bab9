"""Instruments: what a venue trades and how it rounds prices and quantities.

Rounding is one rule, computed by one function for backtest and live alike: the kernels'
:func:`tradetower.kernel_tools.round_price_nb` and ``floor_qty_nb``. Two implementations (the
kernels' float arithmetic and a ``Decimal`` one) agreed everywhere except within float error of
a half tick, where they could differ by one tick; one function leaves nothing to disagree.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AssetClass(StrEnum):
    CRYPTO_SPOT = "CRYPTO_SPOT"
    CRYPTO_FUTURES = "CRYPTO_FUTURES"
    US_EQUITY = "US_EQUITY"
    ETF = "ETF"
    FUTURES = "FUTURES"
    OPTIONS = "OPTIONS"
    FOREX = "FOREX"


MARGIN_CLASSES = frozenset({AssetClass.CRYPTO_FUTURES, AssetClass.FUTURES, AssetClass.FOREX})


class Instrument(BaseModel):
    """A tradable instrument with its venue rules.

    ``tick`` and ``lot`` of 0 mean "no rounding" (a research default, never a venue's).
    ``margin`` marks instruments that may be held short or with leverage; spot instruments
    can only be bought with cash held and sold from base held.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(min_length=1)
    asset_class: AssetClass = AssetClass.CRYPTO_SPOT
    tick: float = Field(default=0.0, ge=0)
    lot: float = Field(default=0.0, ge=0)
    min_qty: float = Field(default=0.0, ge=0)
    min_notional: float = Field(default=0.0, ge=0)
    maker_fee: float = Field(default=0.0, ge=0, le=0.1)
    taker_fee: float = Field(default=0.0, ge=0, le=0.1)
    leverage: float = Field(default=1.0, ge=1, le=125)
    margin: bool | None = None
    fractional: bool = True
    multiplier: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _default_margin(self) -> Instrument:
        if self.margin is None:
            object.__setattr__(self, "margin", self.asset_class in MARGIN_CLASSES)
        return self

    @property
    def is_margin(self) -> bool:
        return bool(self.margin)

    def round_price(self, price: float) -> float:
        """Round a price to the tick, half up (STRATEGIES.md §1)."""
        if self.tick <= 0:
            return price
        from tradetower.kernel_tools import round_price_nb

        return float(round_price_nb(float(price), self.tick, float(_decimals(self.tick))))

    def floor_qty(self, qty: float) -> float:
        """Round a quantity down to the lot step."""
        if self.lot <= 0:
            return qty
        from tradetower.kernel_tools import floor_qty_nb

        return float(floor_qty_nb(float(qty), self.lot, float(_decimals(self.lot))))

    def decimals(self, step: float) -> int:
        return _decimals(step)


@lru_cache(maxsize=256)
def _decimals(step: float) -> int:
    """Digits after the decimal point that multiples of ``step`` need (0.25 → 2, 1e-6 → 6, 5 → 0):
    the kernels round a snapped price or quantity to these many digits."""
    if step <= 0:
        return 12
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # infinity or NaN: no rounding to speak of
        return 12
    return min(15, max(0, -exponent))
