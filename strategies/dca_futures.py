"""DCA Futures: the DCA cycle on a margin instrument (STRATEGIES.md §3.3).

The DCA parameters (:mod:`strategies.dca`) plus leverage. Amounts are **margin**: notional =
margin·L, qty = notional/price. The take-profit, the stop and every exit are reduce-only; SHORT
mirrors LONG. The same decision kernel runs both bots; a params flag turns on what only futures
have:

- the liquidation estimate ``liq = avg(1∓0.9/L)`` and a buffer trigger at ``liq/(1−b)`` (SHORT
  ``liq/(1+b)``), re-armed after each fill; when it fires: CLOSING (``liquidation_buffer``), a
  reduce-only market close, → STOPPED;
- take-profit and stop as PERCENT (from the average) or PRICE (absolute);
- pump protection (§1): more than 3 fills within 60 s → PUMP, which cancels the resting
  averaging orders and blocks new averaging and base orders; each fill re-arms a timer at
  t_last + 60 s, and when it fires the bot is ACTIVE again and the ladder is re-laid from the
  current price (levels the price has passed are dropped, not replayed).

Validation: the stop must lie between the liquidation price and the entry (``stop_loss_pct <
90/L``; a PRICE stop is checked against the first price of the data); likewise the buffer
(``liquidation_buffer < 90/L``, else the buffer trigger sits beyond the entry).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
from numba import njit
from pydantic import Field, model_validator

from strategies import dca as D
from strategies.dca import Dca, DcaConfig, _camel
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError
from tradetower.jit_options import NO_NRT
from tradetower.kernel_signature import KERNEL_SIGNATURE

# §3.3 aliases: safety_order_amount is a_0 (the first averaging amount), the rest map 1:1.
SAFETY_ALIASES = {
    "max_safety_orders": "averaging_orders_quantity",
    "maxSafetyOrders": "averaging_orders_quantity",
    "safety_order_step": "averaging_orders_step",
    "safetyOrderStep": "averaging_orders_step",
    "safety_order_step_multiplier": "step_multiplier",
    "safetyOrderStepMultiplier": "step_multiplier",
    "safety_order_amount_multiplier": "amount_multiplier",
    "safetyOrderAmountMultiplier": "amount_multiplier",
}


class DcaFuturesConfig(DcaConfig):
    """DCA Futures, STRATEGIES.md §3.3: the DCA fields (amounts in margin) plus these."""

    leverage: float = Field(ge=1, le=10, validation_alias=_camel("leverage"))
    """x: set on the venue at start; must match the instrument's leverage in a backtest."""
    margin_type: Literal["ISOLATED", "CROSS"] = Field(
        default="ISOLATED", validation_alias=_camel("margin_type")
    )
    """Recorded; the simulator's margin is account-wide."""
    take_profit_type: Literal["PERCENT", "PRICE"] = Field(
        default="PERCENT", validation_alias=_camel("take_profit_type")
    )
    """PERCENT: take_profit_pct from the average; PRICE: take_profit_price."""
    stop_loss_type: Literal["PERCENT", "PRICE"] = Field(
        default="PERCENT", validation_alias=_camel("stop_loss_type")
    )
    """PERCENT: stop_loss_pct from the average; PRICE: stop_loss_price."""
    take_profit_pct: float | None = Field(  # type: ignore[assignment]
        default=None, ge=0.1, le=1000, validation_alias=_camel("take_profit_pct")
    )
    """Take-profit, % from the average entry (PERCENT)."""
    take_profit_price: float | None = Field(
        default=None, gt=0, validation_alias=_camel("take_profit_price")
    )
    """Take-profit, absolute quote price (PRICE)."""
    stop_loss_price: float | None = Field(
        default=None, gt=0, validation_alias=_camel("stop_loss_price")
    )
    """Stop-loss, absolute quote price (PRICE)."""
    liquidation_buffer: float = Field(
        default=10.0, ge=1, le=50, validation_alias=_camel("liquidation_buffer")
    )
    """b, %: close when the price comes within b of the liquidation price."""
    pump_protection: bool = Field(default=True, validation_alias=_camel("pump_protection"))
    """More than 3 fills in 60 s → PUMP: no new averaging or base orders for 60 s."""

    @model_validator(mode="before")
    @classmethod
    def _safety_aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for alias, name in SAFETY_ALIASES.items():
            if alias in out:
                out.setdefault(name, out.pop(alias))
        for alias in ("safety_order_amount", "safetyOrderAmount"):
            if alias in out:
                a0 = out.pop(alias)
                n = out.get("averaging_orders_quantity", out.get("averagingOrdersQuantity", 0))
                m = out.get("amount_multiplier", out.get("amountMultiplier", 1.0))
                if (
                    isinstance(a0, int | float)
                    and isinstance(n, int)
                    and isinstance(m, int | float)
                ):
                    out.setdefault(
                        "averaging_orders_amount", float(a0) * sum(m**j for j in range(n))
                    )
        return out

    @model_validator(mode="after")
    def _futures_rules(self) -> DcaFuturesConfig:
        if self.take_profit_type == "PERCENT" and self.take_profit_pct is None:
            raise ValueError("take_profit_pct: required with take_profit_type PERCENT")
        if self.take_profit_type == "PRICE" and self.take_profit_price is None:
            raise ValueError("take_profit_price: required with take_profit_type PRICE")
        if self.stop_loss_type == "PRICE" and self.stop_loss_price is None:
            raise ValueError("stop_loss_price: required with stop_loss_type PRICE")
        room = 90.0 / self.leverage
        if self.stop_loss_type == "PERCENT" and self.stop_loss_pct and self.stop_loss_pct >= room:
            raise ValueError(
                f"stop_loss_pct ({self.stop_loss_pct}) must lie between the liquidation price "
                f"and the entry: below 90/leverage = {room:g}%"
            )
        if self.liquidation_buffer >= room:
            raise ValueError(
                f"liquidation_buffer ({self.liquidation_buffer}) must be below 90/leverage = "
                f"{room:g}%: a wider buffer puts liq/(1−b) beyond the entry and closes at once"
            )
        return self


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def dca_futures_on_event_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
    return D.dca_event_nb(params, state, event, actions)


class DcaFutures(Dca):
    """DCA Futures, STRATEGIES.md §3.3 (see the module docstring; DCA's choices apply).

    Further choices:

    - Pump events are the bot's fills (the kernel does not see engine trailing shifts); the
      60 s window is strict (four fills whose times span less than 60 s).
    - A liquidation by the venue (its price reached before the buffer could act) realizes the
      loss and stops the bot (CLOSING with ``liquidation_buffer``, → STOPPED).
    - ``set_leverage`` does not exist in the simulator: the config's leverage must equal the
      instrument's, else the run is refused.
    - ``margin_type`` is recorded only (the simulated margin is account-wide).
    """

    name = "dca_futures"
    Config: ClassVar[type[DcaFuturesConfig]] = DcaFuturesConfig  # type: ignore[assignment]
    kernel = dca_futures_on_event_nb
    futures: ClassVar[bool] = True
    config: DcaFuturesConfig

    def _fill_params(self, p: np.ndarray) -> None:
        c = self.config
        p[D.P_FUT] = 1.0
        p[D.P_LEV] = c.leverage
        if c.take_profit_type == "PRICE":
            p[D.P_TP] = 0.0
            p[D.P_TP_PRICE] = c.take_profit_price or 0.0
        if c.stop_loss_type == "PRICE":
            p[D.P_SL] = 0.0
            p[D.P_SL_PRICE] = c.stop_loss_price or 0.0
        p[D.P_LIQ_BUF] = c.liquidation_buffer / 100.0
        p[D.P_PUMP] = 1.0 if c.pump_protection else 0.0

    def _check_instrument(self, inst: Instrument) -> None:
        c = self.config
        if not inst.is_margin:
            raise ConfigError(
                "instrument",
                f"DCA Futures needs a margin instrument; {inst.symbol} is spot (margin=False)",
            )
        if abs(inst.leverage - c.leverage) > 1e-12:
            raise ConfigError(
                "leverage",
                f"leverage ({c.leverage:g}) differs from the instrument's ({inst.leverage:g}): "
                "the simulator cannot set_leverage, give the instrument the bot's leverage",
            )
        p = self._first_close
        if c.stop_loss_type == "PRICE" and c.stop_loss_price is not None and p == p:
            sign = 1.0 if c.direction == "LONG" else -1.0
            liq = p * (1 - sign * D.LIQ_FRACTION / c.leverage)
            lo, hi = sorted((liq, p))
            if not lo < c.stop_loss_price < hi:
                raise ConfigError(
                    "stop_loss_price",
                    f"stop_loss_price ({c.stop_loss_price}) must lie between the liquidation "
                    f"price ({liq:.8g}) and the entry ({p:.8g})",
                )

    def metrics(self) -> dict[str, Any]:
        out = super().metrics()
        if not out:
            return out
        s = self.state
        pos = float(s[D.S_POS])
        lev = self.config.leverage
        liq = float(s[D.S_LIQ]) if pos > 0 else math.nan
        mark = self._last_close
        margin = float(s[D.S_COST]) / lev if pos > 0 else 0.0
        inv = float(s[D.H.H_INVESTMENT])
        out.update(
            {
                "leverage": lev,
                "liquidation_price": liq,
                "liquidation_distance_pct": abs(mark - liq) / mark * 100.0
                if pos > 0 and mark == mark
                else math.nan,
                "liquidation_buffer_price": float(s[D.S_BUF_LVL]) if pos > 0 else math.nan,
                "exit_liquidation_distance_pct": float(s[D.S_EXIT_LIQ_DIST]) * 100.0,
                "margin_used": margin,
                "max_margin_used": float(s[D.S_MAX_MARGIN]),
                "roi_on_margin_pct": out["total_pnl"] / inv * 100.0 if inv > 0 else 0.0,
                "pump_activations": int(s[D.S_PUMP_COUNT]),
                "liquidated": bool(s[D.S_LIQUIDATED]),
            }
        )
        return out
