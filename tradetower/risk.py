"""The shared risk rules' settings and the kill switch (STRATEGIES.md §4).

:class:`RiskConfig` holds one tenant's limits; the compiled checks live in
:mod:`tradetower.risk_nb`. The simulator applies them to every order and every bar of a run
(``backtest(..., risk=RiskConfig(...))``); :func:`kill_switch_actions` is the kill switch as the
live runner uses it: each bot's kernel gets the ``CMD_KILL`` command and answers with the
actions that cancel its orders and close its position.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.config import FrozenConfig
from tradetower.errors import ConfigError
from tradetower.risk_nb import (
    RULE_DAILY_LOSS,
    RULE_KILL_SWITCH,
    RULE_MAX_DRAWDOWN,
    RULE_NEW_TRADING_DAY,
)
from tradetower.strategy import KernelStrategy

RULE_NAMES = {
    RULE_KILL_SWITCH: "kill_switch",
    RULE_MAX_DRAWDOWN: "max_drawdown",
    RULE_DAILY_LOSS: "daily_loss",
    RULE_NEW_TRADING_DAY: "new_trading_day",
}
REJECT_RULES = {
    K.R_RISK_NOTIONAL: "max_order_notional",
    K.R_RISK_LEVERAGE: "max_leverage",
    K.R_RISK_RATE: "max_orders_per_minute",
    K.R_RISK_KILLED: "kill_switch_latched",
}


class RiskConfig(FrozenConfig):
    """One tenant's risk limits. ``None`` turns a limit off."""

    max_order_notional: float | None = Field(default=None, gt=0)
    """Largest notional (qty · price, quote currency) of one order."""
    max_leverage: float | None = Field(default=None, gt=0)
    """Largest leverage: the instrument's leverage setting, and gross exposure / equity after an
    exposure-increasing order."""
    max_orders_per_minute: int | None = Field(default=60, ge=1, le=100_000)
    """Orders accepted in any rolling 60 s (STRATEGIES.md §4 "Rate")."""
    min_order_spacing_ms: int = Field(default=100, ge=0, le=60_000)
    """Pacing between a bot's orders: the k-th order of one reaction goes out k · spacing later."""
    max_drawdown_pct: float | None = Field(default=None, gt=0, le=100)
    """Equity this far (percent) below its peak closes the bot (CLOSING, ``risk_limit``)."""
    daily_loss_limit: float | None = Field(default=None, gt=0)
    """A UTC day's loss (realized + unrealized, quote currency) at which the bot pauses until
    00:00 UTC."""


def kill_switch_actions(
    bots: Sequence[KernelStrategy],
    marks: Sequence[float],
    now_ms: int,
    bar: int = 0,
    max_actions: int = 256,
) -> list[np.ndarray]:
    """Trip the kill switch for ``bots`` (``marks``: each bot's last price): each kernel handles
    ``CMD_KILL`` (cancel all, protective orders included, close the position, CLOSING with
    ``kill_switch``). Returns each bot's action rows for the venue to carry out; a bot that
    raises does not stop the others (its entry is empty)."""
    if len(marks) != len(bots):
        raise ConfigError("marks", f"one mark price per bot: {len(bots)} bots, {len(marks)} marks")
    out = []
    for bot, mark in zip(bots, marks, strict=True):
        event = np.zeros(K.N_EVENT)
        event[K.E_TYPE] = K.EV_SIGNAL
        event[K.E_BAR] = bar
        event[K.E_TIME] = now_ms
        event[K.E_ID] = -1
        event[K.E_CODE] = C.CMD_KILL
        event[K.E_PRICE] = mark
        event[K.E_MARK] = mark
        actions = np.zeros((max_actions, K.N_ACTION))
        params = np.ascontiguousarray(bot.params, dtype=np.float64)
        try:
            n = int(type(bot).kernel(params, bot.state, event, actions))
        except Exception:  # one failing bot must not stop the rest (§4 kill switch)
            n = 0
        out.append(actions[:n].copy())
    return out
