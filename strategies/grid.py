"""Grid: the spot grid bot of STRATEGIES.md §3.1.

Geometric levels ``p_j = low·(1+s)^j`` from ``grid_levels`` or ``grid_step`` (exactly one). Cell
``j`` is ``[p_j, p_{j+1}]`` and holds one order: BUY_WAIT buys at ``p_j``, SELL_WAIT sells at
``p_{j+1}``. At start the cells below the empty level (the level nearest the price P) wait to buy;
the cells above it are bought in one market order and, once that fills, wait to sell. A filled buy
places its sell one level up; a filled sell realizes the cycle
``qty·(sell−buy) − open_fee − close_fee`` and places the buy again.

Trailing up (cross-up at ``p_top(1+s)``) drops the bottom cell's buy and adds a buy one level
above the old top; trailing down (QUOTE sizing only; cross-down at ``p_0/(1+s)``, not at or below
``stop_trailing_down_price``) market-buys a new bottom cell with quote from outside the investment
(``investment_added``) and sells it at the old bottom level. Pump protection, a stop loss below the
lowest level, a take profit on total PnL, range exit, the CLOSE signal, user stop with its closure
mode, pause/resume and add funds complete the bot.

The decisions are one numba kernel (:func:`grid_on_event_nb`); levels are addressed by an absolute
index ``j`` (it grows with trailing up and goes negative with trailing down), and cells live in a
ring of the state vector.

The choices made where the spec is silent are listed in :class:`Grid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
from numba import njit
from pydantic import AliasChoices, Field, model_validator

from strategies.levels import geometric_levels, levels_from_step
from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.bots import header as H
from tradetower.bots.adapter import BotStrategy
from tradetower.bots.commands import forced_close_trigger_nb
from tradetower.bots.funds import (
    FD_PAUSES,
    FD_WARN,
    POLL_GIVE_UP,
    POLL_RESUME,
    POLL_WAIT,
    episode_poll_tag_nb,
    funds_arm_owed_nb,
    funds_pause_nb,
    funds_poll_nb,
    is_funds_poll_nb,
    new_episode_poll_tag_nb,
)
from tradetower.config import FrozenConfig
from tradetower.domain.bars import MarketData
from tradetower.domain.instrument import Instrument, _decimals
from tradetower.jit_options import NO_NRT, kernel_jit
from tradetower.kernel_signature import KERNEL_SIGNATURE
from tradetower.kernel_tools import (
    arm_cross_nb,
    cancel_all_nb,
    cancel_tag_nb,
    disarm_tag_nb,
    floor_qty_nb,
    place_nb,
    round_price_nb,
    set_timer_nb,
)
from tradetower.lifecycle import Trigger

# ----------------------------------------------------------------------------------- config


class OrderSizeCurrency(StrEnum):
    QUOTE = "QUOTE"
    BASE = "BASE"


class Closure(StrEnum):
    CLOSE_TO_QUOTE = "CLOSE_TO_QUOTE"
    CLOSE_TO_BASE = "CLOSE_TO_BASE"
    CANCEL_ORDERS = "CANCEL_ORDERS"
    NONE = "NONE"
    LIQUIDATE = "LIQUIDATE"


class StartCondition(StrEnum):
    IMMEDIATELY = "IMMEDIATELY"
    MANUAL = "MANUAL"
    SIGNAL = "SIGNAL"
    PRICE_CHANGE = "PRICE_CHANGE"
    TRIGGER_PRICE = "TRIGGER_PRICE"


def _alias(snake: str, camel: str) -> AliasChoices:
    return AliasChoices(snake, camel)


class GridConfig(FrozenConfig):
    """Parameters of the spot Grid bot (STRATEGIES.md §3.1)."""

    investment: float | None = Field(
        default=None, gt=0, validation_alias=_alias("investment", "investment")
    )
    """I, in quote. Give this or ``investment_pct``."""
    investment_pct: float | None = Field(
        default=None, gt=0, le=100, validation_alias=_alias("investment_pct", "investmentPct")
    )
    """Investment as a % of the free quote balance at start."""
    low_price: float = Field(gt=0, validation_alias=_alias("low_price", "lowPrice"))
    """Lowest level, in quote."""
    high_price: float = Field(gt=0, validation_alias=_alias("high_price", "highPrice"))
    """Highest level, in quote (snaps to the last level when ``grid_step`` is given)."""
    grid_step: float | None = Field(
        default=None, ge=0.1, le=100, validation_alias=_alias("grid_step", "gridStep")
    )
    """Step between levels, in % (give this or ``grid_levels``)."""
    grid_levels: int | None = Field(
        default=None, ge=5, le=100, validation_alias=_alias("grid_levels", "gridLevels")
    )
    """Number of price levels N (give this or ``grid_step``)."""
    order_size_currency: OrderSizeCurrency = Field(
        default=OrderSizeCurrency.QUOTE,
        validation_alias=_alias("order_size_currency", "orderSizeCurrency"),
    )
    """QUOTE: the same quote amount per cell; BASE: the same base quantity per cell."""
    trailing_up: bool = Field(default=True, validation_alias=_alias("trailing_up", "trailingUp"))
    """Move the grid up when the price leaves it upwards."""
    trailing_down: bool = Field(
        default=False, validation_alias=_alias("trailing_down", "trailingDown")
    )
    """Extend the grid down with quote from outside the investment (QUOTE sizing only)."""
    stop_trailing_down_price: float | None = Field(
        default=None,
        gt=0,
        validation_alias=_alias("stop_trailing_down_price", "stopTrailingDownPrice"),
    )
    """Quote price below ``low_price``; trailing down adds no level at or below it."""
    pump_protection: bool = Field(
        default=True, validation_alias=_alias("pump_protection", "pumpProtection")
    )
    """More than 3 fills or shifts within 60 s → PUMP: buys wait until 60 s without events."""
    stop_loss_enabled: bool = Field(
        default=True, validation_alias=_alias("stop_loss_enabled", "stopLossEnabled")
    )
    """Whether ``stop_loss_pct`` is in force."""
    stop_loss_pct: float | None = Field(
        default=None, ge=0, le=100, validation_alias=_alias("stop_loss_pct", "stopLossPct")
    )
    """Stop loss, in % below the lowest level (off when unset)."""
    sl_trails_grid: bool = Field(
        default=True, validation_alias=_alias("sl_trails_grid", "slTrailsGrid")
    )
    """The stop loss moves up ×(1+s) with each trailing-up shift."""
    take_profit_enabled: bool = Field(
        default=True, validation_alias=_alias("take_profit_enabled", "takeProfitEnabled")
    )
    """Whether ``take_profit_pct`` is in force."""
    take_profit_pct: float | None = Field(
        default=None, ge=0, le=1000, validation_alias=_alias("take_profit_pct", "takeProfitPct")
    )
    """Take profit when total PnL reaches this % of the investment (off when unset)."""
    closure: Closure = Field(default=Closure.CANCEL_ORDERS)
    """Exit mode of a user stop (CLOSE and the kill switch always close to quote)."""
    start_condition: StartCondition = Field(
        default=StartCondition.IMMEDIATELY,
        validation_alias=_alias("start_condition", "startCondition"),
    )
    """When the grid is laid out; the bot is WAITING until then."""
    start_price_change_pct: float | None = Field(
        default=None,
        ge=-99,
        le=1000,
        validation_alias=_alias("start_price_change_pct", "startPriceChangePct"),
    )
    """PRICE_CHANGE: start when the price moves this % (signed) from the price at start."""
    start_trigger_price: float | None = Field(
        default=None,
        gt=0,
        validation_alias=_alias("start_trigger_price", "startTriggerPrice"),
    )
    """TRIGGER_PRICE: start when the price crosses this level (quote)."""

    @model_validator(mode="after")
    def _rules(self) -> GridConfig:
        if (self.investment is None) == (self.investment_pct is None):
            raise ValueError("give exactly one of investment and investment_pct")
        if self.low_price >= self.high_price:
            raise ValueError(
                f"low_price ({self.low_price}) must be below high_price ({self.high_price})"
            )
        if (self.grid_step is None) == (self.grid_levels is None):
            raise ValueError("give exactly one of grid_step and grid_levels")
        if self.grid_step is not None:
            n = len(levels_from_step(self.low_price, self.high_price, self.grid_step))
            if not 5 <= n <= 100:
                raise ValueError(
                    f"grid_step ({self.grid_step}) gives {n} levels between low_price and "
                    "high_price; the grid needs 5 to 100"
                )
        if self.trailing_down and self.order_size_currency is OrderSizeCurrency.BASE:
            raise ValueError("trailing_down works with order_size_currency QUOTE only")
        if (
            self.stop_trailing_down_price is not None
            and self.stop_trailing_down_price >= self.low_price
        ):
            raise ValueError(
                f"stop_trailing_down_price ({self.stop_trailing_down_price}) must be below "
                f"low_price ({self.low_price})"
            )
        if self.start_condition is StartCondition.PRICE_CHANGE and not self.start_price_change_pct:
            raise ValueError("start_price_change_pct is required (non-zero) for PRICE_CHANGE")
        if (
            self.start_condition is StartCondition.TRIGGER_PRICE
            and self.start_trigger_price is None
        ):
            raise ValueError("start_trigger_price is required for TRIGGER_PRICE")
        return self

    def levels(self) -> np.ndarray:
        """The initial levels (unrounded)."""
        if self.grid_levels is not None:
            return geometric_levels(self.low_price, self.high_price, self.grid_levels)
        assert self.grid_step is not None
        return levels_from_step(self.low_price, self.high_price, self.grid_step)

    @property
    def step(self) -> float:
        """s, as a fraction."""
        if self.grid_step is not None:
            return self.grid_step / 100.0
        assert self.grid_levels is not None
        return float((self.high_price / self.low_price) ** (1.0 / (self.grid_levels - 1)) - 1.0)


# ----------------------------------------------------------------------------------- layout

# params
P_INV = 0
P_INV_PCT = 1
P_LOW = 2
P_N = 3
P_STEP = 4
P_BASE_MODE = 5
P_TRAIL_UP = 6
P_TRAIL_DOWN = 7
P_STOP_TD = 8
P_PUMP = 9
P_SL = 10
P_SL_TRAILS = 11
P_TP = 12
P_TICK = 13
P_TICK_DEC = 14
P_LOT = 15
P_LOT_DEC = 16
P_MIN_QTY = 17
P_MIN_NOTIONAL = 18
P_FM = 19
P_FT = 20
P_CLOSURE = 21
P_START = 22
P_START_VALUE = 23
P_CAP = 24
P_N_FUNDS = 25
P_FUNDS = 32  # pairs (bar, amount)

CL_QUOTE = 0
CL_BASE = 1
CL_CANCEL = 2
CL_NONE = 3
CL_LIQUIDATE = 4
CLOSURE_CODE = {
    Closure.CLOSE_TO_QUOTE: CL_QUOTE,
    Closure.CLOSE_TO_BASE: CL_BASE,
    Closure.CANCEL_ORDERS: CL_CANCEL,
    Closure.NONE: CL_NONE,
    Closure.LIQUIDATE: CL_LIQUIDATE,
}
SC_IMMEDIATELY = 0
SC_MANUAL = 1
SC_SIGNAL = 2
SC_PRICE_CHANGE = 3
SC_TRIGGER = 4
START_CODE = {
    StartCondition.IMMEDIATELY: SC_IMMEDIATELY,
    StartCondition.MANUAL: SC_MANUAL,
    StartCondition.SIGNAL: SC_SIGNAL,
    StartCondition.PRICE_CHANGE: SC_PRICE_CHANGE,
    StartCondition.TRIGGER_PRICE: SC_TRIGGER,
}

# bot fields, offsets from header.BOT_START
B = H.BOT_START
F_LAID = B + 0  # 1 once the grid is laid out
F_P = B + 1  # P, the price at layout
F_Q = B + 2  # q (QUOTE: quote per cell) or Q (BASE: base per cell)
F_E = B + 3  # empty level at layout
F_LO = B + 4  # lowest cell (absolute index)
F_HI = B + 5  # one past the highest cell
F_BQ = B + 6  # the bot's quote (ledger)
F_BB = B + 7  # the bot's base (ledger)
F_OC = B + 8  # cost (with fees) of the base the bot holds
F_ITOT = B + 9  # investment + investment_added
F_IADDED = B + 10
F_INV = B + 11  # I in force (add funds raises it)
F_GRID_PROFIT = B + 12
F_SL = B + 13  # stop-loss price (0: none)
F_MKT_KIND = B + 14  # market buy in flight: 0 none, MK_*
F_MKT_FILLED = B + 15
F_MKT_VALUE = B + 16
F_MKT_FEE = B + 17
F_TRAIL_WAIT = B + 18  # trailing up waits for the bottom cell
F_N_UP = B + 19
F_N_DOWN = B + 20
F_N_PUMP = B + 21
F_PUMP_DUE = B + 22
F_EV0 = B + 23  # the last 4 pump-event times (ms), newest first
F_EV_N = B + 27
F_OUT = B + 28  # out_of_range
F_SIDE = B + 29  # +1 above the range, -1 below, 0 inside
F_MARK = B + 30
F_T0 = B + 31
F_TLAST = B + 32
F_N_SL_NOTE = B + 33
F_N_TP_NOTE = B + 34
F_N_TD_SHORT = B + 35
F_MKT_RETRY = B + 36  # MK_* of a market buy refused for funds: re-sent on resume
F_N_EXT_CANCEL = B + 37
F_N_SKIPPED = B + 38
F_N_FUNDS_WARN = B + 39  # WARNINGs: the last poll failed, or refused again as a poll resumed
F_CLOSE_MODE = B + 40
F_CLOSE_TRIES = B + 41
F_PAUSE_REASON = B + 42  # 0 none, PAUSE_USER, PAUSE_FUNDS
F_FUNDS_RESUMED_T = B + 43  # time of the last resume by a poll
F_TD_SHORT = B + 44
F_ARM_UP = B + 45  # armed trigger levels (0: not armed)
F_ARM_DOWN = B + 46
F_ARM_SL = B + 47
F_ARM_TP = B + 48
F_ARM_RUP = B + 49
F_ARM_RDOWN = B + 50
F_ARM_START = B + 51
F_TP_PRICE = B + 52
F_N_PUMP_NOTE = B + 53
F_N_RANGE_NOTE = B + 54
F_N_IGNORED = B + 55
F_LAST_CLOSE = B + 56  # last close of the data (metrics)
F_MAX_CELLS = B + 57
F_N_ADD_FUNDS = B + 58
F_SETUP_ERR = B + 59  # 1 an initial order below the minimums
F_CLOSE_DUST = B + 60
F_FUNDS_EPISODE = B + 61  # the shared funds helper's three fields (tradetower.bots.funds)
F_FUNDS_PAUSES = F_FUNDS_EPISODE + FD_PAUSES
F_FUNDS_WARN = F_FUNDS_EPISODE + FD_WARN
F_CELLS = B + 64

# cell fields
C_ST = 0
C_QTY = 1  # nominal order quantity
C_LIVE = 2  # an order rests
C_FILLED = 3  # filled so far on the current order
C_FVAL = 4
C_FFEE = 5
C_HELD = 6  # base held
C_OPEN_PX = 7
C_OPEN_FEE = 8
C_CANCEL = 9  # the bot cancelled its order: ignore the cancel event
C_DEFER = 10  # the order is due but not placed (pump, pause, funds)
C_CYCLES = 11
C_WANT = 12  # base still to come from the market buy in flight
CW = 13

IDLE = 0
BUY_WAIT = 1
SELL_WAIT = 2
WAIT_MARKET = 3

MK_START = 1
MK_TRAIL = 2
MK_ADD = 3

TAG_CELL = 1_000_000.0  # + the cell index (which trailing down makes negative)
TAG_CELL_MIN = TAG_CELL / 2
TAG_MARKET = 1.0
TAG_CLOSE = 2.0

TR_UP = 10.0
TR_DOWN = 11.0
TR_SL = 12.0
TR_TP = 13.0
TR_RANGE_UP = 14.0  # above the range: exit upward, then re-entry downward, same level
TR_RANGE_DOWN = 15.0
TR_START = 16.0

TM_PUMP = 20.0
# Funds episode e (from 0) polls on the timers TAG_POLL + 6e + j, j = 0…5: above TM_PUMP, the
# grid's only other timer (its triggers and orders are events of other kinds).
TAG_POLL = 30.0

PAUSE_USER = 1.0
PAUSE_FUNDS = 2.0

SETUP_FAILED = C.TRIGGER_CODE[Trigger.SETUP_FAILED]
CLOSE_FAILED = C.TRIGGER_CODE[Trigger.CLOSE_FAILED]

PUMP_WINDOW_MS = 60_000.0
PUMP_EVENTS = 4  # "more than 3"
MAX_SHIFTS = 64
EXTRA_CELLS = 256  # room for trailing-down extensions


# ----------------------------------------------------------------------------------- helpers


@kernel_jit
def _tick(params: np.ndarray, price: float) -> float:
    return round_price_nb(price, params[P_TICK], params[P_TICK_DEC])


@kernel_jit
def _lot(params: np.ndarray, qty: float) -> float:
    if qty <= 0.0:
        return 0.0
    return floor_qty_nb(qty, params[P_LOT], params[P_LOT_DEC])


@kernel_jit
def _level(params: np.ndarray, j: int) -> float:
    return params[P_LOW] * (1.0 + params[P_STEP]) ** j


@kernel_jit
def _min_ok(params: np.ndarray, qty: float, price: float) -> bool:
    if not qty > 0.0:
        return False
    if qty < params[P_MIN_QTY] - 1e-12:
        return False
    return qty * price >= params[P_MIN_NOTIONAL] - 1e-12


@kernel_jit
def _c(params: np.ndarray, j: int) -> int:
    cap = int(params[P_CAP])
    return F_CELLS + (((j % cap) + cap) % cap) * CW


@kernel_jit
def _qty(params: np.ndarray, q: float, j: int) -> float:
    """Order quantity of cell ``j`` at a size per cell ``q`` (quote, or base in BASE mode)."""
    if params[P_BASE_MODE] > 0:
        return _lot(params, q)
    return _lot(params, q / _level(params, j))


@kernel_jit
def _cell_qty(params: np.ndarray, state: np.ndarray, j: int) -> float:
    return _qty(params, state[F_Q], j)


@kernel_jit
def _clear_cell(state: np.ndarray, c: int) -> None:
    for f in range(CW):
        state[c + f] = 0.0


@kernel_jit
def _room(actions: np.ndarray, n: int, need: int) -> bool:
    return n + need <= actions.shape[0]


@kernel_jit
def _running(state: np.ndarray) -> bool:
    s = int(state[H.H_STATE])
    return s == C.ACTIVE or s == C.TRAILING or s == C.PUMP


@kernel_jit
def _terminal(state: np.ndarray) -> bool:
    s = int(state[H.H_STATE])
    return s == C.STOPPED or s == C.COMPLETED


@kernel_jit
def _place(
    params: np.ndarray,
    state: np.ndarray,
    actions: np.ndarray,
    n: int,
    side: float,
    order_type: int,
    price: float,
    qty: float,
    tag: float,
) -> int:
    if not _room(actions, n, 1):
        return n
    state[H.H_SEQ] += 1.0
    return place_nb(actions, n, 0, side, order_type, price, qty, tag, False, False)


@kernel_jit
def _place_cell(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, j: int) -> int:
    """Place the order a cell's state calls for (or defer it, or skip it below the minimums)."""
    c = _c(params, j)
    st = state[c + C_ST]
    if state[c + C_LIVE] > 0:
        return n
    if st == BUY_WAIT:
        qty = state[c + C_QTY]
        price = _tick(params, _level(params, j))
        s = int(state[H.H_STATE])
        if s == C.PUMP or s == C.PAUSED or s == C.INITIALIZING or s == C.WAITING:
            state[c + C_DEFER] = 1.0
            return n
        if not _min_ok(params, qty, price):
            state[F_N_SKIPPED] += 1.0
            state[c + C_ST] = IDLE
            state[c + C_DEFER] = 0.0
            return n
        if not _room(actions, n, 1):
            state[c + C_DEFER] = 1.0
            return n
        n = _place(params, state, actions, n, 1.0, K.LIMIT, price, qty, TAG_CELL + j)
    elif st == SELL_WAIT:
        qty = state[c + C_HELD]
        price = _tick(params, _level(params, j + 1))
        if int(state[H.H_STATE]) == C.PAUSED:
            state[c + C_DEFER] = 1.0
            return n
        if not _min_ok(params, qty, price):
            # The base stays in the bot as dust (sold on a CLOSE_TO_QUOTE exit).
            state[F_N_SKIPPED] += 1.0
            state[c + C_ST] = IDLE
            state[c + C_DEFER] = 0.0
            return n
        if not _room(actions, n, 1):
            state[c + C_DEFER] = 1.0
            return n
        n = _place(params, state, actions, n, -1.0, K.LIMIT, price, qty, TAG_CELL + j)
    else:
        return n
    state[c + C_LIVE] = 1.0
    state[c + C_DEFER] = 0.0
    state[c + C_FILLED] = 0.0
    state[c + C_FVAL] = 0.0
    state[c + C_FFEE] = 0.0
    return n


@kernel_jit
def _cancel_cell(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, j: int) -> int:
    c = _c(params, j)
    if state[c + C_LIVE] > 0 and _room(actions, n, 1):
        state[c + C_LIVE] = 0.0
        state[c + C_CANCEL] = 1.0
        n = cancel_tag_nb(actions, n, 0, TAG_CELL + j)
    return n


@kernel_jit
def _sync_trigger(
    state: np.ndarray, actions: np.ndarray, n: int, slot: int, tag: float, level: float, up: bool
) -> int:
    """Arm the trigger ``tag`` at ``level`` (0: disarmed), touching only what changed."""
    if state[slot] == level:
        return n
    if not _room(actions, n, 2):
        return n
    if state[slot] != 0.0:
        n = disarm_tag_nb(actions, n, tag)
    if level > 0.0:
        n = arm_cross_nb(actions, n, 0, level, up, tag)
    state[slot] = level
    return n


@kernel_jit
def _td_possible(params: np.ndarray, state: np.ndarray) -> bool:
    """Whether trailing down may add the next level below the grid."""
    if params[P_TRAIL_DOWN] <= 0 or params[P_BASE_MODE] > 0:
        return False
    lo = int(state[F_LO])
    if int(state[F_HI]) - (lo - 1) > int(params[P_CAP]):
        return False
    return _level(params, lo - 1) > params[P_STOP_TD]


@kernel_jit
def _pnl_const(state: np.ndarray) -> float:
    """Total PnL at a price of 0: bot quote less what was invested."""
    return state[F_BQ] - state[F_ITOT]


@kernel_jit
def _tp_level(params: np.ndarray, state: np.ndarray) -> float:
    """The price at which total PnL reaches the target; -1 when it already has at any price."""
    if params[P_TP] <= 0.0:
        return 0.0
    target = params[P_TP] * state[F_INV]
    base = _pnl_const(state)
    bb = state[F_BB]
    if bb <= 1e-12:
        return -1.0 if base >= target - 1e-9 else 0.0
    level = (target - base) / bb
    return -1.0 if level <= 0.0 else level


@kernel_jit
def _sync_guards(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Bring every price trigger in line with the grid as it now is."""
    s = int(state[H.H_STATE])
    running = s == C.ACTIVE or s == C.TRAILING or s == C.PUMP
    live = running or s == C.PAUSED
    lo = int(state[F_LO])
    hi = int(state[F_HI])
    up = 0.0
    down = 0.0
    rup = 0.0
    rdown = 0.0
    sl = 0.0
    tp = 0.0
    if running and state[F_LAID] > 0:
        if params[P_TRAIL_UP] > 0:
            if state[F_TRAIL_WAIT] == 0.0:
                up = _level(params, hi + 1)
        else:
            rup = _level(params, hi)
        td = _td_possible(params, state)
        if td and state[F_TD_SHORT] == 0.0:
            if state[F_MKT_KIND] == 0.0:
                down = _level(params, lo - 1)
        else:
            rdown = _level(params, lo)
    if live and state[F_LAID] > 0:
        sl = state[F_SL]
        tp = state[F_TP_PRICE] if state[F_TP_PRICE] > 0 else 0.0
    n = _sync_trigger(state, actions, n, F_ARM_UP, TR_UP, up, True)
    n = _sync_trigger(state, actions, n, F_ARM_DOWN, TR_DOWN, down, False)
    # Range exit/re-entry: the direction flips with the side the price is on.
    rup_dir = state[F_SIDE] <= 0.0
    if rup > 0.0 and not rup_dir:
        rup = -rup  # encode "armed downward" by sign so a flip re-arms
    n = _sync_range(state, actions, n, F_ARM_RUP, TR_RANGE_UP, rup)
    rdown_dir_down = state[F_SIDE] >= 0.0
    if rdown > 0.0 and not rdown_dir_down:
        rdown = -rdown
    n = _sync_range_down(state, actions, n, F_ARM_RDOWN, TR_RANGE_DOWN, rdown)
    n = _sync_trigger(state, actions, n, F_ARM_SL, TR_SL, sl, False)
    n = _sync_trigger(state, actions, n, F_ARM_TP, TR_TP, tp, True)
    return n


@kernel_jit
def _sync_range(
    state: np.ndarray, actions: np.ndarray, n: int, slot: int, tag: float, signed: float
) -> int:
    """Range trigger above the grid: +level arms the exit (cross-up), -level the re-entry."""
    if state[slot] == signed or not _room(actions, n, 2):
        return n
    if state[slot] != 0.0:
        n = disarm_tag_nb(actions, n, tag)
    if signed != 0.0:
        n = arm_cross_nb(actions, n, 0, abs(signed), signed > 0.0, tag)
    state[slot] = signed
    return n


@kernel_jit
def _sync_range_down(
    state: np.ndarray, actions: np.ndarray, n: int, slot: int, tag: float, signed: float
) -> int:
    """Range trigger below the grid: +level arms the exit (cross-down), -level the re-entry."""
    if state[slot] == signed or not _room(actions, n, 2):
        return n
    if state[slot] != 0.0:
        n = disarm_tag_nb(actions, n, tag)
    if signed != 0.0:
        n = arm_cross_nb(actions, n, 0, abs(signed), signed < 0.0, tag)
    state[slot] = signed
    return n


@kernel_jit
def _disarm_all(state: np.ndarray, actions: np.ndarray, n: int) -> int:
    n = _sync_trigger(state, actions, n, F_ARM_UP, TR_UP, 0.0, True)
    n = _sync_trigger(state, actions, n, F_ARM_DOWN, TR_DOWN, 0.0, False)
    n = _sync_range(state, actions, n, F_ARM_RUP, TR_RANGE_UP, 0.0)
    n = _sync_range_down(state, actions, n, F_ARM_RDOWN, TR_RANGE_DOWN, 0.0)
    n = _sync_trigger(state, actions, n, F_ARM_SL, TR_SL, 0.0, False)
    n = _sync_trigger(state, actions, n, F_ARM_TP, TR_TP, 0.0, True)
    n = _sync_trigger(state, actions, n, F_ARM_START, TR_START, 0.0, True)
    return n


# ------------------------------------------------------------------------------ pump, closing


@kernel_jit
def _pump_event(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, t: float
) -> int:
    """Record a fill or shift; more than 3 within 60 s → PUMP; each event re-arms the timer."""
    if params[P_PUMP] <= 0.0:
        return n
    for k in range(3, 0, -1):
        state[F_EV0 + k] = state[F_EV0 + k - 1]
    state[F_EV0] = t
    if state[F_EV_N] < 4:
        state[F_EV_N] += 1.0
    recent = 0
    for k in range(int(state[F_EV_N])):
        if t - state[F_EV0 + k] <= PUMP_WINDOW_MS:
            recent += 1
    s = int(state[H.H_STATE])
    if s == C.ACTIVE and recent >= PUMP_EVENTS and H.transition_nb(state, C.PUMP, C.PUMP_DETECTED):
        state[F_N_PUMP] += 1.0
        state[F_N_PUMP_NOTE] += 1.0
        s = C.PUMP
    if s == C.PUMP and _room(actions, n, 1):
        due = t + PUMP_WINDOW_MS
        state[F_PUMP_DUE] = due
        n = set_timer_nb(actions, n, due, TM_PUMP)
    return n


@kernel_jit
def _finish_closing(state: np.ndarray) -> None:
    H.finish_closing_nb(state)
    state[F_MKT_KIND] = 0.0


@kernel_jit
def _close_order(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, mark: float
) -> int:
    """Send the exit order of the closure in force; finish at once when there is none."""
    mode = int(state[F_CLOSE_MODE])
    liquidate = mode == CL_LIQUIDATE
    if mode == CL_QUOTE or liquidate:
        qty = _lot(params, state[F_BB])
        if _min_ok(params, qty, mark) and _room(actions, n, 1):
            n = _place(params, state, actions, n, -1.0, K.MARKET, np.nan, qty, TAG_CLOSE)
            if liquidate:
                actions[n - 1, K.A_TIF] = K.IOC
            return n
        state[F_CLOSE_DUST] = state[F_BB]
    elif mode == CL_BASE:
        free = state[F_BQ]
        qty = _lot(params, free / (mark * (1.0 + params[P_FT]))) if mark > 0 else 0.0
        if _min_ok(params, qty, mark) and _room(actions, n, 1):
            return _place(params, state, actions, n, 1.0, K.MARKET, np.nan, qty, TAG_CLOSE)
    _finish_closing(state)
    return n


@kernel_jit
def _start_closing(
    params: np.ndarray,
    state: np.ndarray,
    actions: np.ndarray,
    n: int,
    trigger: int,
    mode: int,
    mark: float,
) -> int:
    s = int(state[H.H_STATE])
    if s == C.CLOSING or s == C.STOPPED or s == C.COMPLETED:
        return n
    if not H.transition_nb(state, C.CLOSING, trigger):
        return n
    state[F_CLOSE_MODE] = mode
    state[F_CLOSE_TRIES] = 0.0
    n = _disarm_all(state, actions, n)
    if mode != CL_NONE:
        if _room(actions, n, 1):
            n = cancel_all_nb(actions, n, 0)
        for j in range(int(state[F_LO]), int(state[F_HI])):
            c = _c(params, j)
            state[c + C_LIVE] = 0.0
            state[c + C_DEFER] = 0.0
        state[F_MKT_KIND] = 0.0
    return _close_order(params, state, actions, n, mark)


# ----------------------------------------------------------------------------------- layout


@kernel_jit
def _layout_price(state: np.ndarray, event: np.ndarray) -> float:
    """P: the event's price, or the last one seen (timer events carry none)."""
    price = event[K.E_PRICE]
    if not price > 0.0:
        price = state[F_MARK]
    return float(price)


@kernel_jit
def _sizing(params: np.ndarray, price: float, free: float) -> tuple[int, float, float]:
    """The layout at P: the empty level e, the size per cell q (or Q) and the investment."""
    n_lv = int(params[P_N])
    fm = params[P_FM]
    ft = params[P_FT]
    inv = params[P_INV]
    if params[P_INV_PCT] > 0:
        inv = params[P_INV_PCT] / 100.0 * free
    e = 0
    for j in range(1, n_lv):
        if abs(_level(params, j) - price) < abs(_level(params, e) - price) - 1e-12:
            e = j
    n_cells = n_lv - 1
    if params[P_BASE_MODE] > 0:
        den = (1.0 + ft) * price * (n_cells - min(e, n_cells))
        for k in range(min(e, n_cells)):
            den += (1.0 + fm) * _level(params, k)
    else:
        den = min(e, n_cells) * (1.0 + fm)
        acc = 0.0
        for k in range(e, n_cells):
            acc += 1.0 / _level(params, k)
        den += price * (1.0 + ft) * acc
    q = inv / den if den > 0 else 0.0
    return e, q, inv


@kernel_jit
def _layout_need(params: np.ndarray, e: int, q: float, price: float) -> tuple[float, bool]:
    """The quote the initial orders take, and whether one of them is below the minimums."""
    fm = params[P_FM]
    ft = params[P_FT]
    need = 0.0
    mkt = 0.0
    bad = False
    for k in range(int(params[P_N]) - 1):
        qty = _qty(params, q, k)
        if k < e:
            px = _tick(params, _level(params, k))
            need += qty * px * (1.0 + fm)
        else:
            px = _tick(params, _level(params, k + 1))
            mkt += qty
        if not _min_ok(params, qty, px):
            bad = True
    if mkt > 0.0 and not _min_ok(params, _lot(params, mkt), price):
        bad = True
    need += mkt * price * (1.0 + ft)
    return need, bad


@kernel_jit
def _layout(
    params: np.ndarray,
    state: np.ndarray,
    event: np.ndarray,
    actions: np.ndarray,
    n: int,
    resume_trigger: int,
) -> int:
    """Size and lay out the grid at the price P of this event (on_start, steps 1-2).

    ``resume_trigger`` leaves PAUSED when the bot paused before its layout (unused otherwise)."""
    price = _layout_price(state, event)
    e, q, inv = _sizing(params, price, event[K.E_FREE])
    n_cells = int(params[P_N]) - 1
    state[F_Q] = q
    state[F_P] = price
    state[F_E] = e
    state[F_LO] = 0.0
    state[F_HI] = n_cells
    state[F_MAX_CELLS] = n_cells
    # Validation: every initial order must meet the minimums, and the quote must be there.
    need, bad = _layout_need(params, e, q, price)
    s = int(state[H.H_STATE])
    if bad or not inv > 0.0:
        state[F_SETUP_ERR] = 1.0
        if not H.transition_nb(state, C.ERROR, SETUP_FAILED):
            H.transition_nb(state, C.ERROR, C.STRATEGY_EXCEPTION)
        return n
    if event[K.E_FREE] < need - 1e-9:
        return _funds_pause(state, event, actions, n)  # (already PAUSED: stays so)
    if s == C.INITIALIZING:
        H.transition_nb(state, C.ACTIVE, C.USER_START)
    elif s == C.WAITING:
        H.transition_nb(state, C.ACTIVE, C.START_CONDITION_MET)
    elif s == C.PAUSED:
        state[H.H_RESUME_TO] = C.ACTIVE
        if H.transition_nb(state, C.ACTIVE, resume_trigger):
            _end_pause(state)
    if int(state[H.H_STATE]) != C.ACTIVE:
        return n
    state[F_LAID] = 1.0
    state[F_INV] = inv
    state[H.H_INVESTMENT] = inv
    state[F_BQ] = inv
    state[F_ITOT] = inv
    if params[P_SL] > 0.0:
        state[F_SL] = _level(params, 0) * (1.0 - params[P_SL])
    total = 0.0
    for k in range(n_cells):
        c = _c(params, k)
        _clear_cell(state, c)
        qty = _cell_qty(params, state, k)
        state[c + C_QTY] = qty
        if k >= e:
            state[c + C_ST] = WAIT_MARKET
            state[c + C_WANT] = qty
            total += qty
    total = _lot(params, total)
    if total > 0.0:
        state[F_MKT_KIND] = MK_START
        state[F_MKT_FILLED] = 0.0
        state[F_MKT_VALUE] = 0.0
        state[F_MKT_FEE] = 0.0
        n = _place(params, state, actions, n, 1.0, K.MARKET, np.nan, total, TAG_MARKET)
    for k in range(min(e, n_cells)):
        c = _c(params, k)
        state[c + C_ST] = BUY_WAIT
        n = _place_cell(params, state, actions, n, k)
    state[F_TP_PRICE] = _tp_level(params, state)
    return n


# ------------------------------------------------------------------------------- trailing


@kernel_jit
def _shift_up(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, price: float, t: float
) -> int:
    """Trailing up, recomputed from ``price``: one shift per level the price is above the top."""
    if params[P_TRAIL_UP] <= 0.0 or state[F_LAID] == 0.0:
        return n
    shifts = 0
    while shifts < MAX_SHIFTS and _room(actions, n, 8):
        hi = int(state[F_HI])
        lo = int(state[F_LO])
        if price < _level(params, hi + 1) * (1.0 - 1e-12):
            state[F_TRAIL_WAIT] = 0.0
            break
        if int(state[H.H_STATE]) != C.ACTIVE:
            break  # PUMP: deferred, recomputed when the pump clears
        c0 = _c(params, lo)
        st0 = state[c0 + C_ST]
        # An IDLE bottom cell (cancelled outside, or its order below the minimums) is dropped;
        # any base it kept stays in the bot as dust.
        ready = (st0 == BUY_WAIT and state[c0 + C_FILLED] == 0.0) or st0 == IDLE
        if not ready:
            state[F_TRAIL_WAIT] = 1.0
            break
        state[F_TRAIL_WAIT] = 0.0
        H.transition_nb(state, C.TRAILING, C.TRAILING_STARTED)
        n = _cancel_cell(params, state, actions, n, lo)
        _clear_cell(state, c0)
        state[F_LO] = lo + 1
        c = _c(params, hi)
        _clear_cell(state, c)
        state[c + C_QTY] = _cell_qty(params, state, hi)
        state[c + C_ST] = BUY_WAIT
        state[F_HI] = hi + 1
        n = _place_cell(params, state, actions, n, hi)
        if params[P_SL_TRAILS] > 0.0 and state[F_SL] > 0.0:
            state[F_SL] = state[F_SL] * (1.0 + params[P_STEP])
        state[F_N_UP] += 1.0
        H.transition_nb(state, C.ACTIVE, C.TRAILING_DONE)
        n = _pump_event(params, state, actions, n, t)
        shifts += 1
    return n


@kernel_jit
def _extend_down(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    """Trailing down from the current price: market-buy the missing cells with outside quote."""
    if int(state[H.H_STATE]) != C.ACTIVE or state[F_MKT_KIND] != 0.0:
        return n
    if not _td_possible(params, state) or state[F_TD_SHORT] > 0.0:
        return n
    price = state[F_MARK]
    if not price > 0.0:
        return n
    lo = int(state[F_LO])
    hi = int(state[F_HI])
    cap = int(params[P_CAP])
    k = 0
    total = 0.0
    while k < MAX_SHIFTS:
        j = lo - 1 - k
        lv = _level(params, j)
        if lv < price * (1.0 - 1e-12) or lv <= params[P_STOP_TD] or hi - j > cap:
            break
        total += _cell_qty(params, state, j)
        k += 1
    if k == 0:
        return n
    outside = min(event[K.E_FREE], event[K.E_CASH] - state[F_BQ])
    # Fewer levels if the outside quote covers only part of them.
    while k > 0:
        total = 0.0
        for m in range(k):
            total += _cell_qty(params, state, lo - 1 - m)
        total = _lot(params, total)
        if total * price * (1.0 + params[P_FT]) <= outside + 1e-9 and _min_ok(params, total, price):
            break
        k -= 1
    if k == 0:
        state[F_TD_SHORT] = 1.0
        state[F_N_TD_SHORT] += 1.0
        return n
    H.transition_nb(state, C.TRAILING, C.TRAILING_STARTED)
    for m in range(k):
        j = lo - 1 - m
        c = _c(params, j)
        _clear_cell(state, c)
        qty = _cell_qty(params, state, j)
        state[c + C_QTY] = qty
        state[c + C_WANT] = qty
        state[c + C_ST] = WAIT_MARKET
    state[F_LO] = lo - k
    state[F_MAX_CELLS] = max(state[F_MAX_CELLS], hi - (lo - k))
    state[F_MKT_KIND] = MK_TRAIL
    state[F_MKT_FILLED] = 0.0
    state[F_MKT_VALUE] = 0.0
    state[F_MKT_FEE] = 0.0
    n = _place(params, state, actions, n, 1.0, K.MARKET, np.nan, total, TAG_MARKET)
    state[F_N_DOWN] += k
    H.transition_nb(state, C.ACTIVE, C.TRAILING_DONE)
    return _pump_event(params, state, actions, n, event[K.E_TIME])


@kernel_jit
def _market_done(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """The market buy in flight is over: hand its base to the waiting cells, place their sells."""
    kind = state[F_MKT_KIND]
    filled = state[F_MKT_FILLED]
    value = state[F_MKT_VALUE]
    fee = state[F_MKT_FEE]
    avg = value / filled if filled > 0.0 else 0.0
    left = filled
    lo = int(state[F_LO])
    hi = int(state[F_HI])
    width = hi - lo
    for m in range(width):
        # Nearest the price first: upward at start and add funds, downward for trailing down.
        j = lo + m if kind != MK_TRAIL else hi - 1 - m
        c = _c(params, j)
        if state[c + C_ST] != WAIT_MARKET:
            continue
        want = state[c + C_WANT]
        got = want if left >= want - 1e-12 else max(left, 0.0)
        got = _lot(params, got) if got < want else want
        left -= got
        state[c + C_WANT] = 0.0
        held = state[c + C_HELD]
        if got > 0.0:
            new = held + got
            state[c + C_OPEN_PX] = (held * state[c + C_OPEN_PX] + got * avg) / new
            state[c + C_OPEN_FEE] += fee * got / filled
            state[c + C_HELD] = new
        if state[c + C_HELD] > 0.0:
            state[c + C_ST] = SELL_WAIT
            n = _place_cell(params, state, actions, n, j)
        else:
            state[c + C_ST] = IDLE
    if kind == MK_TRAIL:
        spent = value + fee
        state[F_BQ] += spent
        state[F_ITOT] += spent
        state[F_IADDED] += spent
        # Cells the purchase could not cover are dropped from the bottom.
        while int(state[F_LO]) < int(state[F_HI]):
            c = _c(params, int(state[F_LO]))
            if state[c + C_ST] == IDLE and state[c + C_HELD] == 0.0 and state[c + C_LIVE] == 0.0:
                _clear_cell(state, c)
                state[F_LO] += 1.0
            else:
                break
    state[F_MKT_KIND] = 0.0
    state[F_MKT_FILLED] = 0.0
    state[F_MKT_VALUE] = 0.0
    state[F_MKT_FEE] = 0.0
    return n


@kernel_jit
def _place_deferred(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    for j in range(int(state[F_LO]), int(state[F_HI])):
        c = _c(params, j)
        if state[c + C_DEFER] > 0.0 and state[c + C_LIVE] == 0.0:
            n = _place_cell(params, state, actions, n, j)
    return n


@kernel_jit
def _retry_market(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Re-send the market buy refused for funds, for what its waiting cells still want."""
    kind = state[F_MKT_RETRY]
    if kind == 0.0:
        return n
    state[F_MKT_RETRY] = 0.0
    total = 0.0
    for j in range(int(state[F_LO]), int(state[F_HI])):
        c = _c(params, j)
        if state[c + C_ST] == WAIT_MARKET:
            total += state[c + C_WANT]
    total = _lot(params, total)
    state[F_MKT_KIND] = kind
    state[F_MKT_FILLED] = 0.0
    state[F_MKT_VALUE] = 0.0
    state[F_MKT_FEE] = 0.0
    if total > 0.0 and _min_ok(params, total, state[F_MARK]) and _room(actions, n, 1):
        return _place(params, state, actions, n, 1.0, K.MARKET, np.nan, total, TAG_MARKET)
    return _market_done(params, state, actions, n)  # nothing left to buy: cells take what they hold


@kernel_jit
def _funds_there(params: np.ndarray, state: np.ndarray, event: np.ndarray) -> bool:
    """At a balance poll: does the free quote cover what the pause holds back, the refused
    buys and market buy (before the layout: the whole layout at the current price)?"""
    free = event[K.E_FREE]
    mark = state[F_MARK]
    if state[F_LAID] == 0.0:
        price = _layout_price(state, event)
        e, q, _ = _sizing(params, price, free)
        need, _ = _layout_need(params, e, q, price)
        return bool(free >= need - 1e-9)
    need = 0.0
    want = 0.0
    for j in range(int(state[F_LO]), int(state[F_HI])):
        c = _c(params, j)
        st = state[c + C_ST]
        if st == BUY_WAIT and state[c + C_DEFER] > 0.0 and state[c + C_LIVE] == 0.0:
            px = _tick(params, _level(params, j))
            fee = params[P_FT] if px >= mark else params[P_FM]  # a buy above the price takes
            need += state[c + C_QTY] * px * (1.0 + fee)
        elif st == WAIT_MARKET:
            want += state[c + C_WANT]
    if state[F_MKT_RETRY] > 0.0:
        need += _lot(params, want) * mark * (1.0 + params[P_FT])
    return bool(free >= need - 1e-9)


@kernel_jit
def _funds_pause(state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int) -> int:
    """A refusal for funds: PAUSED once per episode, with balance polls (the shared rule of
    :mod:`tradetower.bots.funds`), on poll tags of the new episode's own. Before the layout the
    start itself waits for the quote."""
    s = int(state[H.H_STATE])
    running = _running(state) or s == C.INITIALIZING or s == C.WAITING
    n = funds_pause_nb(
        state,
        F_FUNDS_EPISODE,
        F_FUNDS_RESUMED_T,
        running,
        event[K.E_TIME],
        actions,
        n,
        new_episode_poll_tag_nb(state, F_FUNDS_EPISODE, TAG_POLL),
    )
    if s != C.PAUSED and int(state[H.H_STATE]) == C.PAUSED:
        state[F_PAUSE_REASON] = PAUSE_FUNDS
        if state[F_FUNDS_EPISODE] == 0.0:
            state[F_N_FUNDS_WARN] += 1.0  # refused again as a poll resumed it: no new polls
    return n


@kernel_jit
def _end_pause(state: np.ndarray) -> None:
    state[F_PAUSE_REASON] = 0.0
    state[F_FUNDS_EPISODE] = 0.0


@kernel_jit
def _resume(
    params: np.ndarray,
    state: np.ndarray,
    event: np.ndarray,
    actions: np.ndarray,
    n: int,
    trigger: int,
) -> int:
    if int(state[H.H_STATE]) != C.PAUSED:
        return n
    if state[F_LAID] == 0.0:
        # Paused before the grid was laid out: lay it out now (→ ACTIVE) if the quote is there.
        state[H.H_RESUME_TO] = C.ACTIVE
        return _layout(params, state, event, actions, n, trigger)
    if not H.transition_nb(state, int(state[H.H_RESUME_TO]), trigger):
        return n
    _end_pause(state)
    # Trailing first: a bottom buy that is only due is dropped without being sent.
    n = _shift_up(params, state, actions, n, state[F_MARK], event[K.E_TIME])
    n = _retry_market(params, state, actions, n)
    n = _place_deferred(params, state, actions, n)
    return _extend_down(params, state, event, actions, n)


@kernel_jit
def _add_funds(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    """Cancel everything, scale q by I'/I, top up the sell cells with a taker buy, re-place.

    Added funds also end a pause for funds (§4 item 4): the bot resumes (``funds_available``) and
    the orders the pause held back go out at the new size."""
    amount = 0.0
    bar = event[K.E_BAR]
    for k in range(int(params[P_N_FUNDS])):
        if params[P_FUNDS + 2 * k] == bar:
            amount += params[P_FUNDS + 2 * k + 1]
    s = int(state[H.H_STATE])
    paused = s == C.PAUSED and state[F_PAUSE_REASON] == PAUSE_FUNDS and state[F_LAID] > 0.0
    if not amount > 0.0 or state[F_MKT_KIND] != 0.0 or not (s == C.ACTIVE or paused):
        state[F_N_IGNORED] += 1.0
        return n
    if paused:
        if not H.transition_nb(state, int(state[H.H_RESUME_TO]), C.FUNDS_AVAILABLE):
            state[F_N_IGNORED] += 1.0
            return n
        _end_pause(state)
        state[F_MKT_RETRY] = 0.0  # its waiting cells are bought with the top-up below
    ratio = (state[F_INV] + amount) / state[F_INV]
    state[F_INV] += amount
    state[H.H_INVESTMENT] = state[F_INV]
    state[F_ITOT] += amount
    state[F_BQ] += amount
    state[F_Q] *= ratio
    state[F_N_ADD_FUNDS] += 1.0
    total = 0.0
    for j in range(int(state[F_LO]), int(state[F_HI])):
        c = _c(params, j)
        n = _cancel_cell(params, state, actions, n, j)
        qty = _cell_qty(params, state, j)
        st = state[c + C_ST]
        if st == BUY_WAIT:
            state[c + C_QTY] = qty
            state[c + C_DEFER] = 1.0
        elif st == SELL_WAIT:
            state[c + C_QTY] = qty
            extra = _lot(params, qty - state[c + C_HELD])
            if extra > 0.0:
                state[c + C_ST] = WAIT_MARKET
                state[c + C_WANT] = extra
                total += extra
            else:
                state[c + C_DEFER] = 1.0
        elif st == WAIT_MARKET:
            # The cell of a market buy refused for funds: sized anew, bought with the top-up.
            state[c + C_QTY] = qty
            want = _lot(params, qty - state[c + C_HELD])
            state[c + C_WANT] = want
            total += want
    total = _lot(params, total)
    if total > 0.0 and _min_ok(params, total, state[F_MARK]):
        state[F_MKT_KIND] = MK_ADD
        state[F_MKT_FILLED] = 0.0
        state[F_MKT_VALUE] = 0.0
        state[F_MKT_FEE] = 0.0
        n = _place(params, state, actions, n, 1.0, K.MARKET, np.nan, total, TAG_MARKET)
    else:
        for j in range(int(state[F_LO]), int(state[F_HI])):
            c = _c(params, j)
            if state[c + C_ST] == WAIT_MARKET:
                state[c + C_ST] = SELL_WAIT
                state[c + C_WANT] = 0.0
                state[c + C_DEFER] = 1.0
    return _place_deferred(params, state, actions, n)


# ----------------------------------------------------------------------------------- events


@kernel_jit
def _settle_partial(params: np.ndarray, state: np.ndarray, c: int, side: float) -> None:
    """A cancelled order keeps what it filled: bought base is held, sold base is realized."""
    filled = state[c + C_FILLED]
    if filled <= 0.0:
        return
    if side > 0:
        held = state[c + C_HELD]
        new = held + filled
        state[c + C_OPEN_PX] = (held * state[c + C_OPEN_PX] + state[c + C_FVAL]) / new
        state[c + C_OPEN_FEE] += state[c + C_FFEE]
        state[c + C_HELD] = new
        state[c + C_ST] = SELL_WAIT
    else:
        held = state[c + C_HELD]
        share = filled / held if held > 0.0 else 1.0
        cost = filled * state[c + C_OPEN_PX] + state[c + C_OPEN_FEE] * share
        profit = state[c + C_FVAL] - state[c + C_FFEE] - cost
        state[H.H_REALIZED] += profit
        state[F_GRID_PROFIT] += profit
        state[F_OC] -= cost
        state[c + C_OPEN_FEE] -= state[c + C_OPEN_FEE] * share
        state[c + C_HELD] = max(0.0, held - filled)
        if state[c + C_HELD] <= 0.0:
            state[c + C_ST] = BUY_WAIT
    state[c + C_FILLED] = 0.0
    state[c + C_FVAL] = 0.0
    state[c + C_FFEE] = 0.0


@kernel_jit
def _on_fill(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    tag = event[K.E_TAG]
    side = event[K.E_SIDE]
    qty = event[K.E_QTY]
    px = event[K.E_PRICE]
    fee = event[K.E_FEE]
    done = event[K.E_REMAINING] <= 1e-12
    state[H.H_FEES] += fee
    bb_before = state[F_BB]
    if side > 0:
        state[F_BQ] -= qty * px + fee
        state[F_BB] += qty
        state[F_OC] += qty * px + fee
    else:
        state[F_BQ] += qty * px - fee
        state[F_BB] -= qty
        if abs(state[F_BB]) < 1e-12:
            state[F_BB] = 0.0
    s = int(state[H.H_STATE])
    if tag == TAG_CLOSE:
        if side < 0:
            basis = state[F_OC] * qty / bb_before if bb_before > 0.0 else 0.0
            state[H.H_REALIZED] += qty * px - fee - basis
            state[F_OC] -= basis
        if done and s == C.CLOSING:
            _finish_closing(state)
        return n
    if s == C.CLOSING or _terminal(state):
        return n
    if tag == TAG_MARKET:
        state[F_MKT_FILLED] += qty
        state[F_MKT_VALUE] += qty * px
        state[F_MKT_FEE] += fee
        if done:
            n = _pump_event(params, state, actions, n, event[K.E_TIME])
            n = _market_done(params, state, actions, n)
            n = _shift_up(params, state, actions, n, state[F_MARK], event[K.E_TIME])
            n = _extend_down(params, state, event, actions, n)
        return n
    if tag < TAG_CELL_MIN:
        return n
    j = int(np.floor(tag - TAG_CELL + 0.5))
    if j < int(state[F_LO]) or j >= int(state[F_HI]):
        return n
    c = _c(params, j)
    state[c + C_FILLED] += qty
    state[c + C_FVAL] += qty * px
    state[c + C_FFEE] += fee
    if not done:
        return n
    state[c + C_LIVE] = 0.0
    # The event counts before the counter-order: the fill that starts a pump defers its buy.
    n = _pump_event(params, state, actions, n, event[K.E_TIME])
    if side > 0:
        _settle_partial(params, state, c, 1.0)
        n = _place_cell(params, state, actions, n, j)
    else:
        held = state[c + C_HELD]
        filled = state[c + C_FILLED]
        share = filled / held if held > 0.0 else 1.0
        cost = filled * state[c + C_OPEN_PX] + state[c + C_OPEN_FEE] * share
        profit = state[c + C_FVAL] - state[c + C_FFEE] - cost
        state[H.H_REALIZED] += profit
        state[F_GRID_PROFIT] += profit
        state[H.H_CYCLES] += 1.0
        state[c + C_CYCLES] += 1.0
        state[F_OC] -= cost
        state[c + C_HELD] = max(0.0, held - filled)
        state[c + C_OPEN_FEE] -= state[c + C_OPEN_FEE] * share
        state[c + C_FILLED] = 0.0
        state[c + C_FVAL] = 0.0
        state[c + C_FFEE] = 0.0
        if state[c + C_HELD] <= 1e-12:
            state[c + C_HELD] = 0.0
            state[c + C_OPEN_PX] = 0.0
            state[c + C_OPEN_FEE] = 0.0
            state[c + C_ST] = BUY_WAIT
            state[c + C_QTY] = _cell_qty(params, state, j)
        n = _place_cell(params, state, actions, n, j)
    if state[F_TRAIL_WAIT] > 0.0 or j == int(state[F_LO]):
        n = _shift_up(params, state, actions, n, state[F_MARK], event[K.E_TIME])
    return n


@kernel_jit
def _on_cancel(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    tag = event[K.E_TAG]
    reason = int(event[K.E_CODE])
    s = int(state[H.H_STATE])
    if tag == TAG_CLOSE:
        if s != C.CLOSING:
            return n
        state[F_CLOSE_TRIES] += 1.0
        if state[F_CLOSE_TRIES] > 3.0:
            H.transition_nb(state, C.ERROR, CLOSE_FAILED)
            return n
        return _close_order(params, state, actions, n, state[F_MARK])
    if s == C.CLOSING:
        return n
    # A refusal for funds: nothing of the order was filled (a remainder the account could not pay
    # for after a partial fill is not one).
    funds = reason == K.R_INSUFFICIENT_FUNDS and event[K.E_QTY] <= 0.0
    if tag == TAG_MARKET:
        kind = state[F_MKT_KIND]
        if kind == 0.0:
            return n
        if kind == MK_TRAIL:
            lo = state[F_LO]
            n = _market_done(params, state, actions, n)
            if reason == K.R_INSUFFICIENT_FUNDS:
                # §4 item 5: a trailing-down shortfall never pauses; as short of outside quote.
                state[F_N_DOWN] -= state[F_LO] - lo
                state[F_TD_SHORT] = 1.0
                state[F_N_TD_SHORT] += 1.0
            return n
        if funds:
            # Its cells keep waiting; the buy is re-sent when the bot resumes.
            state[F_MKT_RETRY] = kind
            state[F_MKT_KIND] = 0.0
            return _funds_pause(state, event, actions, n)
        return _market_done(params, state, actions, n)
    if tag < TAG_CELL_MIN:
        return n
    j = int(np.floor(tag - TAG_CELL + 0.5))
    if j < int(state[F_LO]) or j >= int(state[F_HI]):
        return n
    c = _c(params, j)
    if state[c + C_CANCEL] > 0.0:
        # The bot cancelled it: keep what it filled; the caller decided what comes next.
        state[c + C_CANCEL] = 0.0
        _settle_partial(params, state, c, event[K.E_SIDE])
        return n
    state[c + C_LIVE] = 0.0
    if funds:
        state[c + C_DEFER] = 1.0
        return _funds_pause(state, event, actions, n)
    if reason == K.R_MIN_SIZE:
        state[F_N_SKIPPED] += 1.0
        state[c + C_ST] = IDLE
        return n
    # External cancel: the cell goes IDLE; a filled part gets its counter-order.
    state[F_N_EXT_CANCEL] += 1.0
    filled = state[c + C_FILLED]
    side = event[K.E_SIDE]
    _settle_partial(params, state, c, side)
    if filled > 0.0:
        if side < 0:
            state[c + C_QTY] = filled
            state[c + C_ST] = BUY_WAIT
        n = _place_cell(params, state, actions, n, j)
    else:
        state[c + C_ST] = IDLE
    return n


@kernel_jit
def _on_trigger(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    tag = event[K.E_TAG]
    price = event[K.E_PRICE]
    t = event[K.E_TIME]
    if tag == TR_START:
        state[F_ARM_START] = 0.0
        if int(state[H.H_STATE]) == C.WAITING:
            return _layout(params, state, event, actions, n, C.USER_RESUME)
        return n
    if tag == TR_SL:
        state[F_ARM_SL] = 0.0
        state[F_N_SL_NOTE] += 1.0
        return _start_closing(params, state, actions, n, C.STOP_LOSS_HIT, CL_QUOTE, price)
    if tag == TR_TP:
        state[F_ARM_TP] = 0.0
        state[F_N_TP_NOTE] += 1.0
        return _start_closing(params, state, actions, n, C.TAKE_PROFIT_HIT, CL_QUOTE, price)
    if tag == TR_UP:
        state[F_ARM_UP] = 0.0
        return _shift_up(params, state, actions, n, price, t)
    if tag == TR_DOWN:
        state[F_ARM_DOWN] = 0.0
        return _extend_down(params, state, event, actions, n)
    if tag == TR_RANGE_UP:
        exiting = state[F_ARM_RUP] > 0.0
        state[F_ARM_RUP] = 0.0
        if exiting:
            state[F_SIDE] = 1.0
            state[F_OUT] = 1.0
            state[F_N_RANGE_NOTE] += 1.0
        else:
            state[F_SIDE] = 0.0
            state[F_OUT] = 0.0
        return n
    if tag == TR_RANGE_DOWN:
        exiting = state[F_ARM_RDOWN] > 0.0
        state[F_ARM_RDOWN] = 0.0
        if exiting:
            state[F_SIDE] = -1.0
            state[F_OUT] = 1.0
            state[F_N_RANGE_NOTE] += 1.0
        else:
            state[F_SIDE] = 0.0
            state[F_OUT] = 0.0
            state[F_TD_SHORT] = 0.0  # back at the bottom level: trailing down may try again
        return n
    return n


@kernel_jit
def _on_timer(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    tag = event[K.E_TAG]
    s = int(state[H.H_STATE])
    if tag == TM_PUMP:
        if s != C.PUMP or event[K.E_CODE] != state[F_PUMP_DUE]:
            return n
        if not H.transition_nb(state, C.ACTIVE, C.PUMP_CLEARED):
            return n
        # Recomputed from the current price: trailing first, then the buys still due.
        n = _shift_up(params, state, actions, n, state[F_MARK], event[K.E_TIME])
        n = _place_deferred(params, state, actions, n)
        return _extend_down(params, state, event, actions, n)
    # A poll of the current funds episode (those left from earlier ones carry other tags).
    tag_poll = episode_poll_tag_nb(state, F_FUNDS_EPISODE, TAG_POLL)
    if is_funds_poll_nb(state, F_FUNDS_EPISODE, event, tag_poll):
        there = _funds_there(params, state, event)
        outcome = funds_poll_nb(state, F_FUNDS_EPISODE, F_FUNDS_RESUMED_T, event, tag_poll, there)
        if outcome == POLL_RESUME:
            return _resume(params, state, event, actions, n, C.FUNDS_AVAILABLE)
        if outcome == POLL_WAIT:
            n = funds_arm_owed_nb(state, F_FUNDS_EPISODE, event, tag_poll, actions, n)
            if state[F_FUNDS_EPISODE] == 0.0:
                state[F_N_FUNDS_WARN] += 1.0  # no row for the polls it owed: none is left
        if outcome == POLL_GIVE_UP:
            state[F_N_FUNDS_WARN] += 1.0
    return n


@kernel_jit
def _on_signal(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    code = int(event[K.E_CODE])
    s = int(state[H.H_STATE])
    mark = state[F_MARK]
    if code == C.CMD_CLOSE:
        return _start_closing(params, state, actions, n, C.CLOSE_SIGNAL, CL_QUOTE, mark)
    closer = forced_close_trigger_nb(code)
    if closer >= 0:
        return _start_closing(params, state, actions, n, closer, CL_QUOTE, mark)
    if code == C.CMD_STOP:
        return _start_closing(params, state, actions, n, C.USER_STOP, int(params[P_CLOSURE]), mark)
    if s == C.WAITING:
        start = int(params[P_START])
        if (code == C.CMD_START and start == SC_MANUAL) or (
            code == C.SIG_BUY and start == SC_SIGNAL
        ):
            return _layout(params, state, event, actions, n, C.USER_RESUME)
        state[F_N_IGNORED] += 1.0
        return n
    if code == C.CMD_PAUSE and _running(state):
        if H.transition_nb(state, C.PAUSED, C.USER_PAUSE):
            state[F_PAUSE_REASON] = PAUSE_USER
            for j in range(int(state[F_LO]), int(state[F_HI])):
                c = _c(params, j)
                if state[c + C_LIVE] > 0.0:
                    n = _cancel_cell(params, state, actions, n, j)
                    state[c + C_DEFER] = 1.0
        return n
    if code == C.CMD_RESUME and s == C.PAUSED:
        return _resume(params, state, event, actions, n, C.USER_RESUME)
    if code == C.CMD_ADD_FUNDS and (_running(state) or s == C.PAUSED):
        return _add_funds(params, state, event, actions, n)
    state[F_N_IGNORED] += 1.0
    return n


@kernel_jit
def _on_start(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    state[F_T0] = event[K.E_TIME]
    start = int(params[P_START])
    if start == SC_IMMEDIATELY:
        return _layout(params, state, event, actions, n, C.USER_RESUME)
    H.transition_nb(state, C.WAITING, C.START_CONDITION_PENDING)
    price = event[K.E_PRICE]
    if start == SC_PRICE_CHANGE:
        level = price * (1.0 + params[P_START_VALUE] / 100.0)
        n = _sync_trigger(state, actions, n, F_ARM_START, TR_START, level, level >= price)
    elif start == SC_TRIGGER:
        level = params[P_START_VALUE]
        n = _sync_trigger(state, actions, n, F_ARM_START, TR_START, level, level >= price)
    return n


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def grid_on_event_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
    """The Grid bot's decisions: one event in, action rows out (see the module docstring)."""
    et = int(event[K.E_TYPE])
    if et == K.EV_STOP or et == K.EV_BAR or et == K.EV_NONE:
        return 0
    state[H.H_BAR] = event[K.E_BAR]
    state[H.H_TIME] = event[K.E_TIME]
    state[F_TLAST] = event[K.E_TIME]
    # The current price: the event's mark, or the last one seen (timer events carry none).
    if event[K.E_MARK] > 0.0:
        state[F_MARK] = event[K.E_MARK]
    elif et == K.EV_START or et == K.EV_SIGNAL:
        state[F_MARK] = event[K.E_PRICE]
    if _terminal(state):
        return 0
    n = 0
    if et == K.EV_START:
        n = _on_start(params, state, event, actions, n)
    elif et == K.EV_FILL:
        n = _on_fill(params, state, event, actions, n)
    elif et == K.EV_CANCEL:
        n = _on_cancel(params, state, event, actions, n)
    elif et == K.EV_TRIGGER:
        n = _on_trigger(params, state, event, actions, n)
    elif et == K.EV_TIMER:
        n = _on_timer(params, state, event, actions, n)
    elif et == K.EV_SIGNAL:
        n = _on_signal(params, state, event, actions, n)
    s = int(state[H.H_STATE])
    if (s == C.ACTIVE or s == C.PUMP or s == C.PAUSED) and state[F_LAID] > 0.0:
        tp = _tp_level(params, state)
        if tp < 0.0 and s != C.PAUSED:
            state[F_N_TP_NOTE] += 1.0
            return _start_closing(
                params, state, actions, n, C.TAKE_PROFIT_HIT, CL_QUOTE, state[F_MARK]
            )
        state[F_TP_PRICE] = tp
        n = _sync_guards(params, state, actions, n)
    return n


# ----------------------------------------------------------------------------------- class

N_BOT_FIELDS = F_CELLS - B
NOTIFICATIONS = (
    ("STOP_LOSS_TRIGGERED", F_N_SL_NOTE),
    ("TAKE_PROFIT_HIT", F_N_TP_NOTE),
    ("INSUFFICIENT_FUNDS", F_FUNDS_PAUSES),
    ("SYSTEM_ALERT_PUMP", F_N_PUMP_NOTE),
    ("SYSTEM_ALERT_OUT_OF_RANGE", F_N_RANGE_NOTE),
    ("TRAILING_DOWN_SHORT", F_N_TD_SHORT),
)
COMMANDS = {
    "START": C.CMD_START,
    "CLOSE": C.CMD_CLOSE,
    "PAUSE": C.CMD_PAUSE,
    "RESUME": C.CMD_RESUME,
    "STOP": C.CMD_STOP,
    "KILL": C.CMD_KILL,
    "BUY": C.SIG_BUY,
}


class Grid(BotStrategy):
    """Spot Grid bot (STRATEGIES.md §3.1).

    Choices where the spec is silent (TradeTower's, documented here):
    - A jump of k steps in one trigger event gives k shifts. A move through several levels *inside*
      one bar gives one shift on that bar; the re-armed trigger acts from the next bar (no
      look-ahead within a bar), so the grid catches up at the next bar if the price is still there.
    - Trailing up waits while the bottom cell holds base (SELL_WAIT, a pending market buy, or a
      partially filled buy); the shift happens, recomputed from the price of that moment, when the
      bottom cell is back to BUY_WAIT. An IDLE bottom cell is dropped (base it kept stays as dust).
    - Trailing down covers every missing level down to the price in one market buy (a gap of k
      levels adds k cells), as the start does. Without enough free quote outside the bot it does
      nothing, counts a TRAILING_DOWN_SHORT notification, does not pause, and re-arms only after the
      price has come back to the bottom level (the bot idles below the range meanwhile,
      ``out_of_range``).
    - "Free quote outside I" is the account's cash not in the bot's own quote ledger, capped by the
      free (unreserved) cash.
    - Pump events are completed fills (an order's last fill) and trailing shifts; the event that
      starts a pump already defers its own counter-buy. PUMP defers buys
      (counter-buys, trailing up and trailing down); at ``t_last+60 s`` they are recomputed from the
      current price: deferred buys are placed at their level (a level now above the price fills at
      the next open as a taker), trailing is re-evaluated from the price.
    - ``out_of_range`` is set when the price reaches the top level with trailing up off, or the
      bottom level with trailing down off (or out of room, or short of quote); it clears when the
      price comes back to that level.
    - Total PnL is ``equity − invested`` (bot quote + bot base·price − investment − added): closing
      fees are not anticipated. The take profit fires when it reaches ``take_profit_pct``% of the
      investment; it is a cross-up price trigger recomputed after each fill.
    - User pause cancels the grid's orders and keeps balances; resume re-places every cell's order.
    - Insufficient funds follow the shared rule (:mod:`tradetower.bots.funds`). An order refused
      for funds (nothing of it filled) pauses the bot (``insufficient_funds``, once per episode)
      without cancelling the others, which keep working while their counter-orders wait. Balance
      polls at 0/15/30/60/120/300 s resume it (``funds_available``) at the first one where the free
      quote covers what the pause holds back (the refused and deferred buys, a buy above the price
      at the taker fee, and a refused market buy at the last price), and re-place those orders: a
      refused market buy (add funds' top-up) is re-sent for what its cells still want. After the
      last poll fails it stays PAUSED (a warning, ``funds_poll_warnings``) until a user RESUME or
      added funds, which resume it (``funds_available``) and re-size the held-back orders. Paused
      before the grid is laid out, a poll (or RESUME) lays it out once the quote for the whole
      layout is there. Each episode polls on timer tags of its own, so a poll left from an
      earlier episode (one a poll or RESUME ended early) is ignored. A remainder the account
      cannot pay for after a partial fill is not a refusal: what filled is kept and the cells it
      did not cover go IDLE.
    - Trailing-down shortfalls never pause (§4 item 5): a trailing-down market buy cut short for
      funds keeps what it bought, drops the levels it could not pay for (they do not count as
      trailing down) and counts as TRAILING_DOWN_SHORT, as a shortfall found before sending.
    - End of data (``on_stop``) leaves the lifecycle as it is (the report shows a running bot); the
      simulator cancels the resting orders and may close the position. A user stop is the
      ``CMD_STOP`` signal and uses ``closure`` (default CANCEL_ORDERS); CLOSE and the kill switch
      use CLOSE_TO_QUOTE.
    - A partially filled order cancelled by the bot or externally keeps what it filled in its cell:
      a partly bought cell sells what it holds, a partly sold cell realizes the sold part. Trailing
      up never cancels a partly filled buy (it waits).

    ``commands`` maps a bar index to a command (``"CLOSE"``, ``"STOP"``, ``"PAUSE"``,
    ``"RESUME"``, ``"START"``, ``"KILL"``, ``"BUY"`` or a signal code) delivered at that bar's
    close; ``add_funds`` maps a bar index to a quote amount added then. Both are for backtests:
    live, the same commands arrive from the API.
    """

    name = "grid"
    Config: ClassVar[type[GridConfig]] = GridConfig
    kernel = grid_on_event_nb

    def __init__(
        self,
        config: GridConfig | None = None,
        *,
        commands: Mapping[int, int | str] | None = None,
        add_funds: Mapping[int, float] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__()
        self.config = config if config is not None else GridConfig.parse(fields)
        self.commands = {int(k): _command(v) for k, v in (commands or {}).items()}
        self.add_funds = {int(k): float(v) for k, v in (add_funds or {}).items()}
        self.instrument: Instrument | None = None
        self._params: np.ndarray | None = None

    def check(self, instruments: dict[str, Instrument]) -> None:
        """Take the venue rules (tick, lot, minimums, fees) of the traded instrument."""
        self.instrument = next(iter(instruments.values()))
        self._params = None

    @property
    def params(self) -> np.ndarray:
        if self._params is None:
            self._params = self._build_params()
        return self._params

    def _build_params(self) -> np.ndarray:
        c = self.config
        inst = self.instrument or Instrument(symbol="X/USD")
        levels = c.levels()
        p = np.zeros(P_FUNDS + 2 * len(self.add_funds))
        p[P_INV] = c.investment or 0.0
        p[P_INV_PCT] = c.investment_pct or 0.0
        p[P_LOW] = c.low_price
        p[P_N] = len(levels)
        p[P_STEP] = c.step
        p[P_BASE_MODE] = 1.0 if c.order_size_currency is OrderSizeCurrency.BASE else 0.0
        p[P_TRAIL_UP] = float(c.trailing_up)
        p[P_TRAIL_DOWN] = float(c.trailing_down)
        p[P_STOP_TD] = c.stop_trailing_down_price or 0.0
        p[P_PUMP] = float(c.pump_protection)
        p[P_SL] = (c.stop_loss_pct or 0.0) / 100.0 if c.stop_loss_enabled else 0.0
        p[P_SL_TRAILS] = float(c.sl_trails_grid)
        p[P_TP] = (c.take_profit_pct or 0.0) / 100.0 if c.take_profit_enabled else 0.0
        p[P_TICK] = inst.tick
        p[P_TICK_DEC] = _decimals(inst.tick)
        p[P_LOT] = inst.lot
        p[P_LOT_DEC] = _decimals(inst.lot)
        p[P_MIN_QTY] = inst.min_qty
        p[P_MIN_NOTIONAL] = inst.min_notional
        p[P_FM] = inst.maker_fee
        p[P_FT] = inst.taker_fee
        p[P_CLOSURE] = CLOSURE_CODE[c.closure]
        p[P_START] = START_CODE[c.start_condition]
        if c.start_condition is StartCondition.PRICE_CHANGE:
            p[P_START_VALUE] = c.start_price_change_pct or 0.0
        elif c.start_condition is StartCondition.TRIGGER_PRICE:
            p[P_START_VALUE] = c.start_trigger_price or 0.0
        p[P_CAP] = len(levels) - 1 + (EXTRA_CELLS if c.trailing_down else 1)
        p[P_N_FUNDS] = len(self.add_funds)
        for k, (bar, amount) in enumerate(sorted(self.add_funds.items())):
            p[P_FUNDS + 2 * k] = bar
            p[P_FUNDS + 2 * k + 1] = amount
        return p

    def initial_state(self, data: MarketData) -> np.ndarray:
        self._params = None
        cap = int(self.params[P_CAP])
        state = H.new_state(N_BOT_FIELDS + cap * CW)
        last = data.last_close()
        state[F_LAST_CLOSE] = 0.0 if last is None else last
        return state

    def signals(self, data: MarketData) -> np.ndarray | None:
        if not self.commands and not self.add_funds:
            return None
        out = np.zeros(data.n_bars, dtype=np.int64)
        for bar in self.add_funds:
            if 0 <= bar < data.n_bars:
                out[bar] = C.CMD_ADD_FUNDS
        for bar, code in self.commands.items():
            if 0 <= bar < data.n_bars:
                out[bar] = code
        return out

    # ------------------------------------------------------------------------- reading

    def level_prices(self) -> np.ndarray:
        """The grid's current levels (unrounded), lowest first."""
        s = self.state
        lo, hi = int(s[F_LO]), int(s[F_HI])
        p = self.params
        return np.asarray(p[P_LOW] * (1.0 + p[P_STEP]) ** np.arange(lo, hi + 1), dtype=float)

    def cells(self) -> list[dict[str, Any]]:
        """Each current cell: index, levels, state, order quantity and held base."""
        names = {IDLE: "IDLE", BUY_WAIT: "BUY_WAIT", SELL_WAIT: "SELL_WAIT", WAIT_MARKET: "MARKET"}
        s, p = self.state, self.params
        out = []
        for j in range(int(s[F_LO]), int(s[F_HI])):
            cap = int(p[P_CAP])
            c = F_CELLS + (j % cap) * CW
            out.append(
                {
                    "cell": j,
                    "low": p[P_LOW] * (1.0 + p[P_STEP]) ** j,
                    "high": p[P_LOW] * (1.0 + p[P_STEP]) ** (j + 1),
                    "state": names.get(int(s[c + C_ST]), "?"),
                    "qty": float(s[c + C_QTY]),
                    "held": float(s[c + C_HELD]),
                    "open_price": float(s[c + C_OPEN_PX]),
                    "order_live": bool(s[c + C_LIVE] > 0),
                    "cycles": int(s[c + C_CYCLES]),
                }
            )
        return out

    def metrics(self) -> dict[str, Any]:
        if not self.state.size:
            return {}
        s, p = self.state, self.params
        out = self.bot_metrics()
        mark = float(s[F_LAST_CLOSE] or s[F_MARK])
        bb, bq = float(s[F_BB]), float(s[F_BQ])
        total = bq + bb * mark - float(s[F_ITOT])
        inv = float(s[F_INV]) or float(p[P_INV])
        days = max((float(s[F_TLAST]) - float(s[F_T0])) / 86_400_000.0, 1.0)
        cells = self.cells() if s[F_LAID] > 0 else []
        used = sum(1 for c in cells if c["cycles"] > 0)
        base_value = bb * mark
        lv = self.level_prices() if s[F_LAID] > 0 else np.zeros(0)
        hi = int(s[F_HI])
        out.update(
            {
                "grid_profit": float(s[F_GRID_PROFIT]),
                "grid_cycles": int(s[H.H_CYCLES]),
                "unrealized_pnl": bb * mark - float(s[F_OC]),
                "total_pnl": total,
                "total_pnl_pct": total / inv * 100.0 if inv > 0 else 0.0,
                "daily_avg_profit": float(s[F_GRID_PROFIT]) / days,
                "trailing_up_count": int(s[F_N_UP]),
                "trailing_down_count": int(s[F_N_DOWN]),
                "pump_activations": int(s[F_N_PUMP]),
                "grid_utilisation_pct": used / len(cells) * 100.0 if cells else 0.0,
                "base_qty": bb,
                "quote_qty": bq,
                "base_value_pct": base_value / (base_value + bq) * 100.0
                if base_value + bq > 0
                else 0.0,
                "out_of_range": bool(s[F_OUT] > 0),
                "investment": inv,
                "investment_added": float(s[F_IADDED]),
                "quote_per_grid": float(s[F_Q]) if p[P_BASE_MODE] == 0 else float("nan"),
                "base_per_grid": float(s[F_Q]) if p[P_BASE_MODE] > 0 else float("nan"),
                "grid_levels": len(lv),
                "lowest_level": float(lv[0]) if lv.size else float("nan"),
                "highest_level": float(lv[-1]) if lv.size else float("nan"),
                "next_trailing_up_price": float(p[P_LOW] * (1.0 + p[P_STEP]) ** (hi + 1))
                if s[F_LAID] > 0 and p[P_TRAIL_UP] > 0
                else float("nan"),
                "stop_loss_price": float(s[F_SL]) if s[F_SL] > 0 else float("nan"),
                "take_profit_price": float(s[F_TP_PRICE]) if s[F_TP_PRICE] > 0 else float("nan"),
                "skipped_min_orders": int(s[F_N_SKIPPED]),
                "external_cancels": int(s[F_N_EXT_CANCEL]),
                "dust_base": float(s[F_CLOSE_DUST]),
                "add_funds_count": int(s[F_N_ADD_FUNDS]),
                "funds_pauses": int(s[F_FUNDS_PAUSES]),
                "funds_poll_warnings": int(s[F_N_FUNDS_WARN]),
                "notifications": [name for name, f in NOTIFICATIONS if s[f] > 0],
            }
        )
        return out


def _command(value: int | str) -> int:
    if isinstance(value, str):
        try:
            return COMMANDS[value.upper()]
        except KeyError:
            raise ValueError(
                f"unknown command {value!r} (known: {', '.join(sorted(COMMANDS))})"
            ) from None
    return int(value)


__all__ = ["Closure", "Grid", "GridConfig", "OrderSizeCurrency", "StartCondition"]
