"""Futures Grid: a grid of resting orders on a margin instrument (STRATEGIES.md §3.7).

N levels (arithmetic or geometric) between low and high, N−1 cells, each with one order. Each
cell has a role fixed at activation: long cells open with a buy at ``p_k`` and close with a
reduce-only sell at ``p_{k+1}``; short cells open with a sell at ``p_{k+1}`` and close with a
reduce-only buy at ``p_k``. LONG makes every cell long and market-buys the cells above the price;
SHORT makes every cell short and market-sells the cells below it; NEUTRAL starts flat, long
below the price and short above it. An open fill places the cell's close one level away; a
close fill realizes the cycle ``qty·(close−open)·dir − open_fee − close_fee`` and re-places the
open. One quantity for every cell, sized at activation so the whole grid uses the margin M:
``Q = floor_lot((M/(1/L+f_t))/Σ open prices)``.

Insufficient funds (§4, the shared :mod:`tradetower.bots.funds` rule): an order refused for
funds (a cell order, the activation market order, or one re-placed later) pauses the bot
(``insufficient_funds``, once per episode) and arms balance polls at 0/15/30/60/120/300 s; the
first poll at which the free margin covers the refused orders resumes it (``funds_available``)
and re-places them. Add funds (``add_funds``, "as Grid") raises M to M', re-sizes Q to M' and
re-places every order with it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
from numba import njit
from pydantic import AliasChoices, Field, model_validator

from strategies.levels import arithmetic_levels, empty_level_nb, geometric_levels
from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.bots import header as H
from tradetower.bots.adapter import BotStrategy
from tradetower.bots.commands import forced_close_trigger_nb
from tradetower.bots.funds import (
    FD_EPISODE,
    FD_PAUSES,
    FD_WARN,
    POLL_GIVE_UP,
    POLL_RESUME,
    episode_poll_tag_nb,
    funds_arm_owed_nb,
    funds_pause_nb,
    funds_poll_nb,
    is_funds_poll_nb,
    new_episode_poll_tag_nb,
)
from tradetower.config import FrozenConfig
from tradetower.domain.bars import MarketData
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError
from tradetower.jit_options import NO_NRT, kernel_jit
from tradetower.kernel_signature import KERNEL_SIGNATURE
from tradetower.kernel_tools import (
    arm_cross_nb,
    cancel_all_nb,
    disarm_tag_nb,
    floor_qty_nb,
    place_nb,
    round_price_nb,
)
from tradetower.lifecycle import Trigger

LIQ_FRACTION = 0.9  # liq = avg(1 ∓ 0.9/L), STRATEGIES.md §3.3

logger = logging.getLogger(__name__)


def _alias(name: str, camel: str) -> AliasChoices:
    return AliasChoices(name, camel)


class FuturesGridDirection(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"
    NEUTRAL = "NEUTRAL"


class GridMode(StrEnum):
    ARITHMETIC = "ARITHMETIC"
    GEOMETRIC = "GEOMETRIC"


class MarginType(StrEnum):
    ISOLATED = "ISOLATED"
    CROSS = "CROSS"


class FuturesGridConfig(FrozenConfig):
    direction: FuturesGridDirection
    """LONG, SHORT or NEUTRAL."""
    margin_type: MarginType = Field(
        default=MarginType.ISOLATED, validation_alias=_alias("margin_type", "marginType")
    )
    """ISOLATED or CROSS."""
    leverage: float = Field(ge=1, le=100)
    """Leverage (x); must match the instrument's (≤ venue and tenant limits)."""
    investment: float = Field(gt=0)
    """Margin M the grid may use, in quote."""
    low_price: float = Field(gt=0, validation_alias=_alias("low_price", "lowPrice"))
    """Lowest level, in quote."""
    high_price: float = Field(gt=0, validation_alias=_alias("high_price", "highPrice"))
    """Highest level, in quote."""
    grid_quantity: int = Field(
        ge=2, le=200, validation_alias=_alias("grid_quantity", "gridQuantity")
    )
    """N, the number of levels (N−1 cells)."""
    grid_mode: GridMode = Field(validation_alias=_alias("grid_mode", "gridMode"))
    """ARITHMETIC (equal price steps) or GEOMETRIC (equal ratios)."""
    trigger_price: float | None = Field(
        default=None, gt=0, validation_alias=_alias("trigger_price", "triggerPrice")
    )
    """Quote price: the bot WAITS until the price crosses it, then lays the grid there."""
    stop_loss: float | None = Field(
        default=None, gt=0, validation_alias=_alias("stop_loss", "stopLoss")
    )
    """Quote price level of the stop loss (→ STOPPED)."""
    take_profit: float | None = Field(
        default=None, gt=0, validation_alias=_alias("take_profit", "takeProfit")
    )
    """Quote price level of the take profit (→ COMPLETED)."""
    close_position_on_stop: bool = Field(
        default=True,
        validation_alias=_alias("close_position_on_stop", "closePositionOnStop"),
    )
    """true: close the position at market when stopping (CLOSE_TO_QUOTE); false: only cancel."""
    liquidation_buffer: float = Field(
        default=10.0,
        ge=1,
        le=50,
        validation_alias=_alias("liquidation_buffer", "liquidationBuffer"),
    )
    """Percent: close when the price comes within this share of the liquidation price."""

    @model_validator(mode="after")
    def _rules(self) -> FuturesGridConfig:
        if self.low_price >= self.high_price:
            raise ValueError(
                f"low_price ({self.low_price}) must be below high_price ({self.high_price})"
            )
        if self.liquidation_buffer / 100.0 >= LIQ_FRACTION / self.leverage:
            raise ValueError(
                f"liquidation_buffer ({self.liquidation_buffer}%) must be below the liquidation "
                f"distance 0.9/leverage = {90.0 / self.leverage:.4g}% at leverage "
                f"{self.leverage:g}: the buffer trigger liq/(1−b) would lie beyond the entry"
            )
        if (
            self.stop_loss is not None
            and self.take_profit is not None
            and self.stop_loss == self.take_profit
        ):
            raise ValueError(
                f"stop_loss ({self.stop_loss}) and take_profit ({self.take_profit}) must differ"
            )
        return self

    def levels(self) -> np.ndarray:
        if self.grid_mode == GridMode.GEOMETRIC:
            return geometric_levels(self.low_price, self.high_price, self.grid_quantity)
        return arithmetic_levels(self.low_price, self.high_price, self.grid_quantity)


# --- params (float64 vector): the config, then the N levels ---
P_DIR = 0  # +1 LONG, -1 SHORT, 0 NEUTRAL
P_LEV = 1
P_M = 2
P_N = 3
P_TRIGGER = 4  # NaN: none
P_SL = 5
P_TP = 6
P_CLOSE_ON_STOP = 7
P_BUFFER = 8  # fraction
P_N_AF = 9  # add-funds entries: (bar, amount) pairs after the levels
P_LEVELS = 16

# --- own state fields (offsets from H.BOT_START) ---
B = H.BOT_START
S_LOT = B + 0  # venue rules, written by check() from the instrument
S_LOT_DEC = B + 1
S_TICK = B + 2
S_TICK_DEC = B + 3
S_FM = B + 4
S_FT = B + 5
S_MIN_QTY = B + 6
S_MIN_NOTIONAL = B + 7
S_P = B + 8  # activation price
S_E = B + 9  # empty level at activation
S_Q = B + 10  # quantity per cell
S_POS = B + 11  # venue position (signed)
S_AVG = B + 12  # venue average entry (fees excluded)
S_MARK = B + 13  # last mark seen
S_GRID_PROFIT = B + 14  # realized by completed cycles
S_OUT = B + 15  # out of range: -1 below, +1 above, 0 inside
S_RANGE_EXITS = B + 16
S_MKT_QTY = B + 17  # the activation market order: quantity, filled, cost, fee
S_MKT_FILLED = B + 18
S_MKT_COST = B + 19
S_MKT_FEE = B + 20
S_CLOSE_OUT = B + 21  # 1 while the closing market order is out
S_LIQUIDATED = B + 22
S_DUST = B + 23
S_N_REJECTED = B + 24
S_CLOSE_RETRIES = B + 25
S_ACTIVATED = B + 26
S_N_CELLS = B + 27
S_LIQ_LEVEL = B + 28  # armed liquidation-buffer trigger level (NaN: none)
S_START_BAR = B + 29
S_ERROR = B + 30  # 1: the grid size is below the venue minimums
S_SL_LEVEL = B + 31
S_TP_LEVEL = B + 32
S_FUNDS = B + 33  # the shared funds helper's three fields: episode, pauses, warning
S_FUNDS_PAUSES = S_FUNDS + FD_PAUSES
S_FUNDS_WARN = S_FUNDS + FD_WARN
S_FUNDS_RESUMED_T = B + 36  # time of the last resume by a balance poll
S_FUNDS_PAUSED = B + 37  # 1 while PAUSED by a funds refusal (add funds may resume it)
S_FUNDS_WARNINGS = B + 38  # WARNINGs: the last poll failed, or a refusal right after a resume
S_MKT_RETRY = B + 39  # 1: the activation market order was refused for funds; re-sent on resume
S_SUM_OPEN = B + 40  # Σ open prices of the sizing (add funds re-sizes Q from it)
S_AF_COUNT = B + 41  # add funds accepted
S_AF_REFUSED = B + 42  # add funds refused (not ACTIVE nor paused for funds, or a market order out)
N_FIXED = 44
CELLS = B + N_FIXED
CW = 9  # per cell: state, role, held qty, held cost, held open fees, cycle PnL so far, ...
C_STATE = 0
C_ROLE = 1
C_HOLD = 2
C_COST = 3
C_FEE = 4
C_CYC = 5
C_LIVE = 6  # 1 while the cell's order rests at the venue
C_OWED = 7  # 1: its order is owed as it was (refused for funds, or re-sized by add funds)
C_CXL = 8  # the bot's own cancels of the cell's order whose events are still to come

CS_OPEN = 0.0  # the open order is out (flat, or partly filled)
CS_CLOSE = 1.0  # holding; the close order is out (or re-placed on resume)
CS_IDLE = 2.0  # no order (external cancel, rejection, dust)
CS_PRE = 3.0  # held by the activation market order, waiting for its fill

MKT_TAG = 900.0
CLOSE_TAG = 901.0
START_TAG = 1001.0
SL_TAG = 1002.0
TP_TAG = 1003.0
LIQ_TAG = 1004.0
RANGE_LOW_TAG = 1005.0
RANGE_HIGH_TAG = 1006.0
RANGE_BACK_TAG = 1007.0
TAG_POLL = 2000.0  # balance-poll timers: episode e (0-based) uses TAG_POLL + 6e + j

SETUP_FAILED = C.TRIGGER_CODE[Trigger.SETUP_FAILED]
CLOSE_FAILED = C.TRIGGER_CODE[Trigger.CLOSE_FAILED]
ERR_TOO_SMALL = 1.0


@kernel_jit
def _floor_lot_nb(qty: float, lot: float, decimals: float) -> float:
    if lot <= 0.0:
        return qty
    return floor_qty_nb(qty, lot, decimals)


@kernel_jit
def _tick_nb(price: float, tick: float, decimals: float) -> float:
    if tick <= 0.0:
        return price
    return round_price_nb(price, tick, decimals)


@kernel_jit
def _venue_pos_nb(state: np.ndarray, pos: float) -> float:
    """The venue's position with float residue below a millionth of a lot read as flat."""
    if abs(pos) < max(state[S_LOT] * 1e-6, 1e-9):
        return 0.0
    return pos


@kernel_jit
def _cell(k: int) -> int:
    return CELLS + k * CW


@kernel_jit
def _too_small_nb(state: np.ndarray, qty: float, price: float) -> bool:
    return (
        qty <= 0.0
        or qty < state[S_MIN_QTY]
        or (price > 0.0 and qty * price < state[S_MIN_NOTIONAL] - 1e-12)
    )


@kernel_jit
def _open_price_nb(params: np.ndarray, state: np.ndarray, k: int) -> float:
    role = state[_cell(k) + C_ROLE]
    price = params[P_LEVELS + k] if role > 0 else params[P_LEVELS + k + 1]
    return _tick_nb(price, state[S_TICK], state[S_TICK_DEC])


@kernel_jit
def _close_price_nb(params: np.ndarray, state: np.ndarray, k: int) -> float:
    role = state[_cell(k) + C_ROLE]
    price = params[P_LEVELS + k + 1] if role > 0 else params[P_LEVELS + k]
    return _tick_nb(price, state[S_TICK], state[S_TICK_DEC])


@kernel_jit
def _place_open_qty_nb(
    params: np.ndarray, state: np.ndarray, k: int, qty: float, actions: np.ndarray, n: int
) -> int:
    c = _cell(k)
    state[c + C_STATE] = CS_OPEN
    state[c + C_LIVE] = 1.0
    state[H.H_SEQ] += 1
    price = _open_price_nb(params, state, k)
    return place_nb(actions, n, 0, state[c + C_ROLE], K.LIMIT, price, qty, float(k), False, False)


@kernel_jit
def _place_open_nb(
    params: np.ndarray, state: np.ndarray, k: int, actions: np.ndarray, n: int
) -> int:
    return _place_open_qty_nb(params, state, k, state[S_Q], actions, n)


@kernel_jit
def _open_rest_nb(state: np.ndarray, k: int) -> float:
    """What cell k's open still lacks of Q (the rest of a refused or re-sized open)."""
    rest = state[S_Q] - state[_cell(k) + C_HOLD]
    return _floor_lot_nb(max(rest, 0.0), state[S_LOT], state[S_LOT_DEC])


@kernel_jit
def _place_close_nb(
    params: np.ndarray, state: np.ndarray, k: int, actions: np.ndarray, n: int
) -> int:
    """The reduce-only close of what cell k holds; too small to send → dust, the cell idles."""
    c = _cell(k)
    role = state[c + C_ROLE]
    price = _close_price_nb(params, state, k)
    qty = _floor_lot_nb(state[c + C_HOLD], state[S_LOT], state[S_LOT_DEC])
    if _too_small_nb(state, qty, price):
        state[c + C_STATE] = CS_IDLE
        state[c + C_LIVE] = 0.0
        state[S_DUST] += state[c + C_HOLD]
        return n
    state[c + C_STATE] = CS_CLOSE
    state[c + C_LIVE] = 1.0
    state[H.H_SEQ] += 1
    # NEUTRAL may hold long and short cells at once, which the venue nets: a reduce-only close
    # could be refused there, so NEUTRAL closes are plain limits (the cells keep the net).
    reduce = params[P_DIR] != 0.0
    return place_nb(actions, n, 0, -role, K.LIMIT, price, qty, float(k), False, reduce)


@kernel_jit
def _arm_liq_nb(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Re-arm the liquidation-buffer trigger for the current net position."""
    n = disarm_tag_nb(actions, n, LIQ_TAG)
    state[S_LIQ_LEVEL] = np.nan
    pos = state[S_POS]
    if pos == 0.0:
        return n
    lev = params[P_LEV]
    b = params[P_BUFFER]
    if pos > 0:
        level = state[S_AVG] * (1.0 - LIQ_FRACTION / lev) / (1.0 - b)
    else:
        level = state[S_AVG] * (1.0 + LIQ_FRACTION / lev) / (1.0 + b)
    state[S_LIQ_LEVEL] = level
    return arm_cross_nb(actions, n, 0, level, pos < 0, LIQ_TAG)


@kernel_jit
def _realize_out_nb(state: np.ndarray, qty: float, price: float, fee: float) -> None:
    """Realize a position-closing fill (close-out or liquidation) of ``qty`` at ``price``.

    The fill closes the share ``qty/|net|`` of the net position, so that share of every holding
    cell is realized at ``price`` (long and short cells that net out lock their PnL in).
    """
    n_cells = int(state[S_N_CELLS])
    net = 0.0
    for k in range(n_cells):
        c = _cell(k)
        net += state[c + C_ROLE] * state[c + C_HOLD]
    f = 1.0 if abs(net) <= 1e-12 else min(1.0, qty / abs(net))
    pnl = -fee
    for k in range(n_cells):
        c = _cell(k)
        hold = state[c + C_HOLD]
        if hold <= 0.0:
            continue
        role = state[c + C_ROLE]
        pnl += f * (role * (hold * price - state[c + C_COST]) - state[c + C_FEE])
        if f >= 1.0:
            state[c + C_HOLD] = 0.0
            state[c + C_COST] = 0.0
            state[c + C_FEE] = 0.0
        else:
            state[c + C_HOLD] = hold * (1.0 - f)
            state[c + C_COST] *= 1.0 - f
            state[c + C_FEE] *= 1.0 - f
    state[H.H_REALIZED] += pnl


@kernel_jit
def _finish_close_nb(state: np.ndarray) -> None:
    state[S_CLOSE_OUT] = 0.0
    if int(state[H.H_STATE]) == C.CLOSING:
        H.finish_closing_nb(state)


@kernel_jit
def _disarm_all_nb(actions: np.ndarray, n: int) -> int:
    n = disarm_tag_nb(actions, n, START_TAG)
    n = disarm_tag_nb(actions, n, SL_TAG)
    n = disarm_tag_nb(actions, n, TP_TAG)
    n = disarm_tag_nb(actions, n, LIQ_TAG)
    n = disarm_tag_nb(actions, n, RANGE_LOW_TAG)
    n = disarm_tag_nb(actions, n, RANGE_HIGH_TAG)
    return disarm_tag_nb(actions, n, RANGE_BACK_TAG)


@kernel_jit
def _start_closing_nb(state: np.ndarray, trigger: int, close: bool, actions: np.ndarray) -> int:
    """→ CLOSING: cancel every order and trigger, then close the position at market (or not)."""
    s = int(state[H.H_STATE])
    if s == C.CLOSING or s == C.STOPPED or s == C.COMPLETED or s == C.INITIALIZING:
        return 0
    if s == C.ERROR and trigger != C.USER_STOP and trigger != C.KILL_SWITCH:
        return 0
    if not H.transition_nb(state, C.CLOSING, trigger):
        return 0
    n = cancel_all_nb(actions, 0, 0)
    n = _disarm_all_nb(actions, n)
    state[S_LIQ_LEVEL] = np.nan
    pos = state[S_POS]
    qty = _floor_lot_nb(abs(pos), state[S_LOT], state[S_LOT_DEC])
    if close and qty > 0.0:
        side = -1.0 if pos > 0 else 1.0
        n = place_nb(actions, n, 0, side, K.MARKET, np.nan, qty, CLOSE_TAG, False, True)
        state[S_CLOSE_OUT] = 1.0
        state[H.H_SEQ] += 1
        return n
    if close:  # flat at the venue: long and short cells that net out are done
        _realize_out_nb(state, 0.0, state[S_MARK], 0.0)
    _finish_close_nb(state)
    return n


@kernel_jit
def _arm_level_nb(actions: np.ndarray, n: int, level: float, ref: float, tag: float) -> int:
    """A plain price level: below ``ref`` it fires on price ≤ level, above it on price ≥."""
    if level != level:
        return n
    return arm_cross_nb(actions, n, 0, level, level > ref, tag)


@kernel_jit
def _arm_range_nb(state: np.ndarray, actions: np.ndarray, n: int, low: float, high: float) -> int:
    """Out of range means strictly beyond low or high: the exits sit half a tick outside."""
    eps = max(state[S_TICK] * 0.5, high * 1e-9)
    n = arm_cross_nb(actions, n, 0, low - eps, False, RANGE_LOW_TAG)
    return arm_cross_nb(actions, n, 0, high + eps, True, RANGE_HIGH_TAG)


@kernel_jit
def _activate_nb(
    params: np.ndarray, state: np.ndarray, price: float, trigger: int, actions: np.ndarray
) -> int:
    direction = params[P_DIR]
    n_levels = int(params[P_N])
    n_cells = n_levels - 1
    levels = params[P_LEVELS : P_LEVELS + n_levels]
    e = empty_level_nb(levels, price)
    total_open = 0.0
    for k in range(n_cells):
        c = _cell(k)
        if direction > 0:
            role = 1.0
        elif direction < 0:
            role = -1.0
        else:
            role = 1.0 if k < e else -1.0
        state[c + C_ROLE] = role
        if k < e:
            open_price = price if direction < 0 else levels[k]
        else:
            open_price = price if direction > 0 else levels[k + 1]
        total_open += open_price
    lev = params[P_LEV]
    q = _floor_lot_nb(
        (params[P_M] / (1.0 / lev + state[S_FT])) / total_open, state[S_LOT], state[S_LOT_DEC]
    )
    state[S_P] = price
    state[S_E] = e
    state[S_Q] = q
    state[S_SUM_OPEN] = total_open
    state[S_START_BAR] = state[H.H_BAR]
    if _too_small_nb(state, q, levels[0]):
        state[S_ERROR] = ERR_TOO_SMALL
        to = SETUP_FAILED if int(state[H.H_STATE]) == C.INITIALIZING else C.STRATEGY_EXCEPTION
        H.transition_nb(state, C.ERROR, to)
        return 0
    if not H.transition_nb(state, C.ACTIVE, trigger):
        return 0
    state[S_ACTIVATED] = 1.0
    n = 0
    n_pre = 0
    for k in range(n_cells):
        c = _cell(k)
        pre = (direction > 0 and k >= e) or (direction < 0 and k < e)
        if pre:
            state[c + C_STATE] = CS_PRE
            n_pre += 1
        else:
            n = _place_open_nb(params, state, k, actions, n)
    if n_pre > 0:
        qty = round(q * n_pre, int(state[S_LOT_DEC]))
        state[S_MKT_QTY] = qty
        n = place_nb(actions, n, 0, direction, K.MARKET, np.nan, qty, MKT_TAG, False, False)
        state[H.H_SEQ] += 1
    n = _arm_level_nb(actions, n, params[P_SL], price, SL_TAG)
    n = _arm_level_nb(actions, n, params[P_TP], price, TP_TAG)
    state[S_SL_LEVEL] = params[P_SL]
    state[S_TP_LEVEL] = params[P_TP]
    low = levels[0]
    high = levels[n_levels - 1]
    if price < low:
        state[S_OUT] = -1.0
        n = arm_cross_nb(actions, n, 0, low, True, RANGE_BACK_TAG)
    elif price > high:
        state[S_OUT] = 1.0
        n = arm_cross_nb(actions, n, 0, high, False, RANGE_BACK_TAG)
    else:
        n = _arm_range_nb(state, actions, n, low, high)
    return n


@kernel_jit
def _market_done_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, keep_rest: bool
) -> int:
    """Hand the activation market fill to the cells it opened, nearest the price first.

    A cell it filled in full (or in part) holds that and waits to close. With ``keep_rest``
    (refused for funds) a cell still short of Q keeps what it got and waits for the market
    order to be sent again on resume; without, a cell it did not reach goes idle.
    """
    filled = state[S_MKT_FILLED]
    n_cells = int(state[S_N_CELLS])
    e = int(state[S_E])
    q = state[S_Q]
    avg = state[S_MKT_COST] / filled if filled > 0 else 0.0
    fee = state[S_MKT_FEE]
    left = filled
    active = int(state[H.H_STATE]) == C.ACTIVE
    direction = params[P_DIR]
    for j in range(n_cells):
        k = e + j if direction > 0 else e - 1 - j
        if k < 0 or k >= n_cells:
            break
        c = _cell(k)
        if state[c + C_STATE] != CS_PRE:
            continue
        held = state[c + C_HOLD]  # > 0 only after a market order refused for funds
        share = min(q - held, left)
        left = round(left - share, 12)
        if share > 0.0:
            state[c + C_HOLD] = share if held <= 0.0 else round(held + share, 12)
            state[c + C_COST] += share * avg
            state[c + C_FEE] += fee * share / filled
        if keep_rest and state[c + C_HOLD] < q - 1e-12:
            continue
        if state[c + C_HOLD] <= 0.0:
            state[c + C_STATE] = CS_IDLE
            continue
        state[c + C_STATE] = CS_CLOSE
        if active:
            n = _place_close_nb(params, state, k, actions, n)
    state[S_MKT_QTY] = 0.0
    return n


@kernel_jit
def _market_rest_nb(state: np.ndarray) -> float:
    """What the cells waiting for the activation market order still lack of Q."""
    rest = 0.0
    for k in range(int(state[S_N_CELLS])):
        c = _cell(k)
        if state[c + C_STATE] == CS_PRE:
            rest += max(state[S_Q] - state[c + C_HOLD], 0.0)
    return round(rest, int(state[S_LOT_DEC]))


@kernel_jit
def _retry_market_nb(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Send the activation market order again for the cells still waiting for it."""
    state[S_MKT_RETRY] = 0.0
    qty = _market_rest_nb(state)
    if qty <= 0.0:
        return n
    state[S_MKT_QTY] = qty
    state[S_MKT_FILLED] = 0.0
    state[S_MKT_COST] = 0.0
    state[S_MKT_FEE] = 0.0
    state[H.H_SEQ] += 1
    return place_nb(actions, n, 0, params[P_DIR], K.MARKET, np.nan, qty, MKT_TAG, False, False)


@kernel_jit
def _resume_orders_nb(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Place every cell's order that is not resting: a cell owed its open re-places the open
    for what it lacks of Q; any other open that filled in part gets the close of that part."""
    for k in range(int(state[S_N_CELLS])):
        c = _cell(k)
        owed = state[c + C_OWED] > 0.0
        state[c + C_OWED] = 0.0
        if state[c + C_LIVE] > 0.0:
            continue
        st = state[c + C_STATE]
        if st == CS_OPEN:
            hold = state[c + C_HOLD]
            if hold <= 0.0:
                n = _place_open_nb(params, state, k, actions, n)
                continue
            rest = _open_rest_nb(state, k)
            if owed and not _too_small_nb(state, rest, _open_price_nb(params, state, k)):
                n = _place_open_qty_nb(params, state, k, rest, actions, n)
            else:
                n = _place_close_nb(params, state, k, actions, n)
        elif st == CS_CLOSE:
            n = _place_close_nb(params, state, k, actions, n)
    if state[S_MKT_RETRY] > 0.0:
        n = _retry_market_nb(params, state, actions, n)
    return n


@kernel_jit
def _resume_nb(params: np.ndarray, state: np.ndarray, why: int, actions: np.ndarray, n: int) -> int:
    """PAUSED → resume_to (a user resume, or funds available); the owed orders go out."""
    to = int(state[H.H_RESUME_TO])
    if not H.transition_nb(state, to, why):
        return n
    state[S_FUNDS + FD_EPISODE] = 0.0
    state[S_FUNDS_PAUSED] = 0.0
    if to != C.ACTIVE:
        return n
    return _resume_orders_nb(params, state, actions, n)


@kernel_jit
def _funds_pause_nb(state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int) -> int:
    """A refusal for funds: pause once per episode (the other orders keep resting) and arm the
    balance polls, each episode on timer tags of its own (as far as ``actions`` has rows; the
    first poll that waits arms the rest)."""
    before = state[S_FUNDS_PAUSES]
    tag_poll = new_episode_poll_tag_nb(state, S_FUNDS, TAG_POLL)
    n = funds_pause_nb(
        state,
        S_FUNDS,
        S_FUNDS_RESUMED_T,
        H.is_running_nb(state),
        event[K.E_TIME],
        actions,
        n,
        tag_poll,
    )
    if state[S_FUNDS_PAUSES] > before:
        state[S_FUNDS_PAUSED] = 1.0
        if state[S_FUNDS + FD_EPISODE] <= 0.0:  # refused as a poll resumed, or no row to poll
            state[S_FUNDS_WARNINGS] += 1.0
    return n


@kernel_jit
def _funds_there_nb(params: np.ndarray, state: np.ndarray, event: np.ndarray) -> bool:
    """Does the free margin cover the orders refused for funds?

    Free margin is the account's equity less the margin of the position at the last mark
    (``|pos|·mark/L``); each refused order needs ``qty·price·(1/L + fee rate)``.
    """
    inv_lev = 1.0 / params[P_LEV]
    need = 0.0
    for k in range(int(state[S_N_CELLS])):
        c = _cell(k)
        if state[c + C_OWED] <= 0.0 or state[c + C_LIVE] > 0.0:
            continue
        st = state[c + C_STATE]
        if st == CS_OPEN:
            qty = _open_rest_nb(state, k)
            price = _open_price_nb(params, state, k)
        elif st == CS_CLOSE:
            qty = _floor_lot_nb(state[c + C_HOLD], state[S_LOT], state[S_LOT_DEC])
            price = _close_price_nb(params, state, k)
        else:
            continue
        need += qty * price * (inv_lev + state[S_FM])
    if state[S_MKT_RETRY] > 0.0:
        need += _market_rest_nb(state) * state[S_MARK] * (inv_lev + state[S_FT])
    free = event[K.E_EQUITY] - abs(state[S_POS]) * state[S_MARK] * inv_lev
    return bool(free >= need - 1e-9)


@kernel_jit
def _own_cancel_all_nb(state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Cancel every order; the cells' cancel events that follow are the bot's own."""
    for k in range(int(state[S_N_CELLS])):
        c = _cell(k)
        if state[c + C_LIVE] > 0.0:
            state[c + C_LIVE] = 0.0
            state[c + C_CXL] += 1.0
    return cancel_all_nb(actions, n, 0)


@kernel_jit
def _add_funds_nb(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray
) -> int:
    """Add margin: M' = M + amount, Q re-sized to M', every order re-placed with it.

    Accepted while ACTIVE or PAUSED for funds (it then resumes, ``funds_available``) with no
    market order out; refused (counted) otherwise.
    """
    amount = 0.0
    base = P_LEVELS + int(params[P_N])
    for j in range(int(params[P_N_AF])):
        if params[base + 2 * j] == event[K.E_BAR]:
            amount += params[base + 2 * j + 1]
    s = int(state[H.H_STATE])
    for_funds = s == C.PAUSED and state[S_FUNDS_PAUSED] > 0.0
    if not amount > 0.0 or not (s == C.ACTIVE or for_funds) or state[S_MKT_QTY] > 0.0:
        state[S_AF_REFUSED] += 1.0
        return 0
    m = state[H.H_INVESTMENT] + amount
    state[H.H_INVESTMENT] = m
    state[S_AF_COUNT] += 1.0
    per_open = (m / (1.0 / params[P_LEV] + state[S_FT])) / state[S_SUM_OPEN]
    state[S_Q] = _floor_lot_nb(per_open, state[S_LOT], state[S_LOT_DEC])
    for k in range(int(state[S_N_CELLS])):
        c = _cell(k)
        if state[c + C_STATE] == CS_OPEN:
            state[c + C_OWED] = 1.0  # a partly filled open is re-placed for the rest of Q'
    n = _own_cancel_all_nb(state, actions, 0)
    if for_funds:
        return _resume_nb(params, state, C.FUNDS_AVAILABLE, actions, n)
    return _resume_orders_nb(params, state, actions, n)


@kernel_jit
def _cell_fill_nb(
    params: np.ndarray, state: np.ndarray, k: int, event: np.ndarray, actions: np.ndarray
) -> int:
    c = _cell(k)
    qty = event[K.E_QTY]
    px = event[K.E_PRICE]
    fee = event[K.E_FEE]
    done = event[K.E_REMAINING] <= 0.0
    active = int(state[H.H_STATE]) == C.ACTIVE
    if done:
        state[c + C_LIVE] = 0.0
    if state[c + C_STATE] == CS_OPEN:
        state[c + C_HOLD] = round(state[c + C_HOLD] + qty, 12)
        state[c + C_COST] += qty * px
        state[c + C_FEE] += fee
        if done and active:
            return _place_close_nb(params, state, k, actions, 0)
        if done:
            state[c + C_STATE] = CS_CLOSE
        return 0
    hold = state[c + C_HOLD]
    if hold <= 0.0:
        state[H.H_REALIZED] -= fee
        return 0
    q = min(qty, hold)
    avg_open = state[c + C_COST] / hold
    part = q / hold
    pnl = q * (px - avg_open) * state[c + C_ROLE] - state[c + C_FEE] * part - fee
    state[c + C_HOLD] = round(hold - q, 12)
    state[c + C_COST] -= avg_open * q
    state[c + C_FEE] -= state[c + C_FEE] * part
    state[c + C_CYC] += pnl
    state[H.H_REALIZED] += pnl
    if not done:
        return 0
    state[H.H_CYCLES] += 1
    state[S_GRID_PROFIT] += state[c + C_CYC]
    state[c + C_CYC] = 0.0
    state[c + C_HOLD] = 0.0
    state[c + C_COST] = 0.0
    state[c + C_FEE] = 0.0
    state[c + C_STATE] = CS_OPEN
    if active:
        return _place_open_nb(params, state, k, actions, 0)
    return 0


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def futures_grid_on_event_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
    et = int(event[K.E_TYPE])
    state[H.H_BAR] = event[K.E_BAR]
    state[H.H_TIME] = event[K.E_TIME]
    if event[K.E_INST] >= 0 and event[K.E_MARK] > 0.0:
        state[S_MARK] = event[K.E_MARK]
    s = int(state[H.H_STATE])
    tag = event[K.E_TAG]
    n_cells = int(state[S_N_CELLS])

    if et == K.EV_START:
        if s != C.INITIALIZING:
            return 0
        state[S_POS] = _venue_pos_nb(state, event[K.E_POS_QTY])
        price = event[K.E_PRICE]
        level = params[P_TRIGGER]
        if level != level:
            return _activate_nb(params, state, price, C.USER_START, actions)
        H.transition_nb(state, C.WAITING, C.START_CONDITION_PENDING)
        if level == price:
            return _activate_nb(params, state, price, C.START_CONDITION_MET, actions)
        return arm_cross_nb(actions, 0, 0, level, level > price, START_TAG)

    if et == K.EV_FILL:
        old = state[S_POS]
        new = _venue_pos_nb(state, event[K.E_POS_QTY])
        qty = event[K.E_QTY]
        px = event[K.E_PRICE]
        if new == 0.0:
            state[S_AVG] = 0.0
        elif old == 0.0 or (old > 0) != (new > 0):
            state[S_AVG] = px
        elif abs(new) > abs(old):
            state[S_AVG] = (abs(old) * state[S_AVG] + qty * px) / abs(new)
        state[S_POS] = new
        state[H.H_FEES] += event[K.E_FEE]
        n = 0
        if event[K.E_CODE] == 1 or event[K.E_ID] < 0:
            # Liquidated by the venue: book it, then stop.
            state[S_LIQUIDATED] = 1.0
            _realize_out_nb(state, qty, px, event[K.E_FEE])
            if s == C.CLOSING:
                _finish_close_nb(state)
                return 0
            return _start_closing_nb(state, C.LIQUIDATION_BUFFER, False, actions)
        if tag == CLOSE_TAG:
            _realize_out_nb(state, qty, px, event[K.E_FEE])
            if event[K.E_REMAINING] <= 0.0:
                _finish_close_nb(state)
            return 0
        if tag == MKT_TAG:
            state[S_MKT_FILLED] = round(state[S_MKT_FILLED] + qty, 12)
            state[S_MKT_COST] += qty * px
            state[S_MKT_FEE] += event[K.E_FEE]
            if event[K.E_REMAINING] <= 0.0:
                n = _market_done_nb(params, state, actions, n, False)
        elif 0 <= tag < n_cells:
            n = _cell_fill_nb(params, state, int(tag), event, actions)
        s = int(state[H.H_STATE])
        if s == C.ACTIVE or s == C.PAUSED:
            n = _arm_liq_nb(params, state, actions, n)
        return n

    if et == K.EV_CANCEL:
        state[S_POS] = _venue_pos_nb(state, event[K.E_POS_QTY])
        reason = int(event[K.E_CODE])
        funds = reason == K.R_INSUFFICIENT_FUNDS
        if tag == MKT_TAG:
            if state[S_MKT_QTY] <= 0.0:
                return 0
            if funds:
                # What filled opens its cells; the rest waits for funds (sent again on resume).
                n = _market_done_nb(params, state, actions, 0, True)
                state[S_MKT_RETRY] = 1.0
                return _funds_pause_nb(state, event, actions, n)
            return _market_done_nb(params, state, actions, 0, False)
        if tag == CLOSE_TAG:
            if s != C.CLOSING:
                return 0
            pos = state[S_POS]
            qty = _floor_lot_nb(abs(pos), state[S_LOT], state[S_LOT_DEC])
            if qty <= 0.0:
                _finish_close_nb(state)
                return 0
            if state[S_CLOSE_RETRIES] >= 3:
                H.transition_nb(state, C.ERROR, CLOSE_FAILED)
                return 0
            state[S_CLOSE_RETRIES] += 1
            state[H.H_SEQ] += 1
            side = -1.0 if pos > 0 else 1.0
            return place_nb(actions, 0, 0, side, K.MARKET, np.nan, qty, CLOSE_TAG, False, True)
        if not (0 <= tag < n_cells):
            return 0
        k = int(tag)
        c = _cell(k)
        if reason == K.R_USER and state[c + C_CXL] > 0.0:
            state[c + C_CXL] -= 1.0  # the bot's own cancel (pause, add funds)
            return 0
        state[c + C_LIVE] = 0.0
        if s != C.ACTIVE and s != C.PAUSED:
            return 0
        if reason != K.R_USER:
            state[S_N_REJECTED] += 1
        if funds:
            # Refused for funds: the cell keeps its state and is owed this order (what it
            # filled stays held); pause and poll the balance.
            state[c + C_OWED] = 1.0
            return _funds_pause_nb(state, event, actions, 0)
        if state[c + C_STATE] == CS_OPEN and state[c + C_HOLD] > 0.0:
            # A partly filled open: its filled part gets its close (on resume when paused).
            if s == C.ACTIVE:
                return _place_close_nb(params, state, k, actions, 0)
            return 0
        state[c + C_STATE] = CS_IDLE
        return 0

    if et == K.EV_TIMER:
        tag_poll = episode_poll_tag_nb(state, S_FUNDS, TAG_POLL)
        if not is_funds_poll_nb(state, S_FUNDS, event, tag_poll):
            return 0
        there = _funds_there_nb(params, state, event)
        outcome = funds_poll_nb(state, S_FUNDS, S_FUNDS_RESUMED_T, event, tag_poll, there)
        if outcome == POLL_RESUME:
            return _resume_nb(params, state, C.FUNDS_AVAILABLE, actions, 0)
        if outcome == POLL_GIVE_UP:
            state[S_FUNDS_WARNINGS] += 1.0
            return 0
        # Waiting: the polls the pause had no action rows for go out now.
        n = funds_arm_owed_nb(state, S_FUNDS, event, tag_poll, actions, 0)
        if state[S_FUNDS + FD_EPISODE] <= 0.0:  # no row for them either: no poll left to come
            state[S_FUNDS_WARNINGS] += 1.0
        return n

    if et == K.EV_TRIGGER:
        state[S_POS] = _venue_pos_nb(state, event[K.E_POS_QTY])
        if tag == START_TAG:
            if s == C.WAITING:
                return _activate_nb(params, state, event[K.E_PRICE], C.START_CONDITION_MET, actions)
            return 0
        close_on_stop = params[P_CLOSE_ON_STOP] > 0
        if tag == SL_TAG:
            return _start_closing_nb(state, C.STOP_LOSS_HIT, close_on_stop, actions)
        if tag == TP_TAG:
            return _start_closing_nb(state, C.TAKE_PROFIT_HIT, close_on_stop, actions)
        if tag == LIQ_TAG:
            return _start_closing_nb(state, C.LIQUIDATION_BUFFER, True, actions)
        levels = params[P_LEVELS : P_LEVELS + int(params[P_N])]
        low = levels[0]
        high = levels[levels.shape[0] - 1]
        below = tag == RANGE_LOW_TAG
        if below or tag == RANGE_HIGH_TAG:
            state[S_OUT] = -1.0 if below else 1.0
            state[S_RANGE_EXITS] += 1
            n = disarm_tag_nb(actions, 0, RANGE_HIGH_TAG if below else RANGE_LOW_TAG)
            return arm_cross_nb(actions, n, 0, low if below else high, below, RANGE_BACK_TAG)
        if tag == RANGE_BACK_TAG:
            state[S_OUT] = 0.0
            return _arm_range_nb(state, actions, 0, low, high)
        return 0

    if et == K.EV_SIGNAL:
        state[S_POS] = _venue_pos_nb(state, event[K.E_POS_QTY])
        code = int(event[K.E_CODE])
        if code == C.CMD_CLOSE:
            return _start_closing_nb(state, C.CLOSE_SIGNAL, True, actions)
        if code == C.CMD_STOP:
            return _start_closing_nb(state, C.USER_STOP, params[P_CLOSE_ON_STOP] > 0, actions)
        closer = forced_close_trigger_nb(code)
        if closer >= 0:
            return _start_closing_nb(state, closer, True, actions)
        if code == C.CMD_PAUSE:
            if s == C.ACTIVE:
                H.transition_nb(state, C.PAUSED, C.USER_PAUSE)
                return _own_cancel_all_nb(state, actions, 0)
            if s == C.WAITING:
                H.transition_nb(state, C.PAUSED, C.USER_PAUSE)
            return 0
        if code == C.CMD_RESUME:
            if s == C.PAUSED:
                return _resume_nb(params, state, C.USER_RESUME, actions, 0)
            return 0
        if code == C.CMD_ADD_FUNDS:
            return _add_funds_nb(params, state, event, actions)
        if code == C.CMD_START and s == C.WAITING:
            # A manual start overrides the trigger price: lay the grid at the current price.
            n = disarm_tag_nb(actions, 0, START_TAG)
            return n + _activate_nb(
                params, state, event[K.E_PRICE], C.START_CONDITION_MET, actions[n:]
            )
        return 0
    # EV_STOP (the data ended): the bot keeps its state; the venue cancels what rests.
    return 0


class FuturesGrid(BotStrategy):
    """Futures grid bot (STRATEGIES.md §3.7; the module docstring has the layout).

    Choices where the spec is silent:

    * NEUTRAL cells keep the role they got at activation (long below the empty level, short
      above), so a NEUTRAL grid is long below the activation price and short above it. A bar
      that spans the empty level can fill a long cell's buy and a short cell's sell: the cells
      then hold both sides, which a one-way venue nets. A reduce-only close would be refused
      there, so NEUTRAL sends its closes as plain limits and the cells' book keeps the venue
      position equal to their sum; LONG and SHORT closes are reduce-only. (§3.7 says
      "close orders are reduce-only" without this case.)
    * Realized PnL is per cell (grid family): a cycle realizes
      ``qty·(close−open)·dir − open_fee − close_fee`` with the fees actually paid (the market
      open's fee is shared pro rata over the cells it opened). A close-out (SL, TP, stop,
      liquidation) realizes every holding cell pro rata at the exit price. Grid profit counts
      completed cycles only; unpaired PnL = total − grid profit.
    * SL and TP are price levels armed at activation, on the side of the activation price they
      lie (below: price ≤ level, above: price ≥ level). ``close_position_on_stop`` decides the
      closure for SL, TP and a user stop; the CLOSE signal, the kill switch and the
      liquidation buffer always close the position. A venue liquidation ends STOPPED.
    * The liquidation-buffer trigger is on the net position: ``liq = avg(1∓0.9/L)``, armed at
      ``liq/(1−b)`` (long) or ``liq/(1+b)`` (short) and re-armed after every fill. The config
      refuses ``b ≥ 0.9/L`` (the trigger would lie beyond the entry and fire at once), so the
      default 10% buffer needs leverage below 9; a lower buffer allows more.
    * An activation whose Q is below the venue minimums ends in ERROR (``error_too_small``).
    * Out of range (a cross of low or high) only sets ``out_of_range``: the orders keep resting.
    * An externally cancelled or rejected cell order leaves the cell idle (a partly filled open
      gets its close for the filled part).
    * Insufficient funds (§4): a margin venue refuses at the fill, often after filling what the
      margin allowed, so any refusal for funds pauses, a partial one too. The refused order is
      owed as it was: a cell's open for what it still lacks of Q (its filled part stays held,
      its close waits for the full open), a NEUTRAL close for what the cell holds, the
      activation market order for the cells it did not fill (what it filled opens its cells).
      The other orders keep resting while PAUSED; their fills are booked and the orders they
      call for wait for the resume. A poll finds the funds there when the free margin, equity
      less ``|pos|·mark/L``, covers ``qty·price·(1/L + fee rate)`` of the refused orders. After
      the 300 s poll fails the bot stays PAUSED (a WARNING, counted in ``funds_status()``)
      until a user RESUME or added funds. Each episode's polls use timer tags of their own, so
      a poll left over from an earlier episode never counts. Polls the pause had no action rows
      for (``max_actions``) are armed by the first poll that waits, on the same schedule. The
      funds figures are in ``funds_status()``, not in ``metrics()``.
    * Add funds (``add_funds``: bar → margin added, in quote; delivered as ADD_FUNDS at that
      bar's close): accepted while ACTIVE, or PAUSED for funds (it then resumes with
      ``funds_available``), and never while the activation market order is out; otherwise
      refused and counted. ``M' = M + amount``, ``Q' = floor_lot((M'/(1/L+f_t))/Σ open
      prices)`` (the activation's Q scaled by M'/M before the lot rounding). Every order is
      cancelled and re-placed: opens with Q' (a partly filled open for the rest of Q'), closes
      for what their cells hold (no market top-up: a futures grid adds margin, not a position;
      the cells reopen with Q' after their cycle). Statistics are kept; M' is the new
      investment.
    * PAUSE cancels the orders and keeps the cells; RESUME re-places them from the cells (an
      open that filled in part gets the close of that part).
    * Margin per cell uses the taker rate in the sizing (``1/L + f_t``) as the spec says.
    * The end of the data leaves the state as it is (still ACTIVE; the venue closes positions).
    """

    name = "futures_grid"
    Config: ClassVar[type[FuturesGridConfig]] = FuturesGridConfig
    kernel = futures_grid_on_event_nb

    def __init__(
        self,
        config: FuturesGridConfig | None = None,
        *,
        commands: Mapping[int, int] | None = None,
        add_funds: Mapping[int, float] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__()
        self.config = config if config is not None else FuturesGridConfig.parse(fields)
        self.commands = dict(commands or {})
        self.add_funds = {int(k): float(v) for k, v in (add_funds or {}).items()}
        for bar, amount in self.add_funds.items():
            if bar < 0 or not math.isfinite(amount) or amount <= 0:
                raise ConfigError(
                    "add_funds",
                    f"add_funds: bar {bar} must be ≥ 0 and the margin added ({amount}) > 0",
                )
        self._last_close = float("nan")

    @property
    def params(self) -> np.ndarray:
        c = self.config
        levels = c.levels()
        n_levels = levels.shape[0]
        p = np.zeros(P_LEVELS + n_levels + 2 * len(self.add_funds))
        p[P_DIR] = {
            FuturesGridDirection.LONG: 1.0,
            FuturesGridDirection.SHORT: -1.0,
            FuturesGridDirection.NEUTRAL: 0.0,
        }[c.direction]
        p[P_LEV] = c.leverage
        p[P_M] = c.investment
        p[P_N] = c.grid_quantity
        p[P_TRIGGER] = np.nan if c.trigger_price is None else c.trigger_price
        p[P_SL] = np.nan if c.stop_loss is None else c.stop_loss
        p[P_TP] = np.nan if c.take_profit is None else c.take_profit
        p[P_CLOSE_ON_STOP] = 1.0 if c.close_position_on_stop else 0.0
        p[P_BUFFER] = c.liquidation_buffer / 100.0
        p[P_LEVELS : P_LEVELS + n_levels] = levels
        p[P_N_AF] = len(self.add_funds)
        for j, (bar, amount) in enumerate(sorted(self.add_funds.items())):
            p[P_LEVELS + n_levels + 2 * j] = bar
            p[P_LEVELS + n_levels + 2 * j + 1] = amount
        return p

    def initial_state(self, data: MarketData) -> np.ndarray:
        n_cells = self.config.grid_quantity - 1
        state = H.new_state(N_FIXED + CW * n_cells)
        state[H.H_INVESTMENT] = self.config.investment
        state[S_N_CELLS] = n_cells
        state[S_LIQ_LEVEL] = np.nan
        state[S_SL_LEVEL] = np.nan
        state[S_TP_LEVEL] = np.nan
        for k in range(n_cells):
            state[CELLS + k * CW + C_STATE] = CS_IDLE
        closes = data.ohlcv[:, 0, 3]
        valid = closes[~np.isnan(closes)]
        self._last_close = float(valid[-1]) if valid.size else float("nan")
        return state

    def check(self, instruments: dict[str, Instrument]) -> None:
        """Validate against the venue and copy its rounding rules and fees into the state."""
        inst = next(iter(instruments.values()))
        c = self.config
        if not inst.is_margin:
            raise ConfigError(
                "direction",
                f"a futures grid needs a margin instrument; {inst.symbol} is spot (CLI: --margin)",
            )
        if c.leverage != inst.leverage:
            raise ConfigError(
                "leverage",
                f"leverage ({c.leverage}) must match the instrument's ({inst.leverage})",
            )
        if self.state.size:
            s = self.state
            s[S_LOT] = inst.lot
            s[S_LOT_DEC] = inst.decimals(inst.lot) if inst.lot > 0 else 12
            s[S_TICK] = inst.tick
            s[S_TICK_DEC] = inst.decimals(inst.tick) if inst.tick > 0 else 12
            s[S_FM] = inst.maker_fee
            s[S_FT] = inst.taker_fee
            s[S_MIN_QTY] = inst.min_qty
            s[S_MIN_NOTIONAL] = inst.min_notional

    def signals(self, data: MarketData) -> np.ndarray | None:
        if not self.commands and not self.add_funds:
            return None
        out = np.zeros(data.n_bars, dtype=np.int64)
        for bar in self.add_funds:
            if bar < data.n_bars:
                out[bar] = C.CMD_ADD_FUNDS
        for bar, code in self.commands.items():
            out[bar] = code
        return out

    def cells(self) -> list[dict[str, Any]]:
        """Per cell: state, role, held quantity, its average open price and open fees."""
        s = self.state
        if not s.size:
            return []
        names = {CS_OPEN: "OPEN_WAIT", CS_CLOSE: "CLOSE_WAIT", CS_IDLE: "IDLE", CS_PRE: "PRE"}
        out = []
        for k in range(int(s[S_N_CELLS])):
            c = CELLS + k * CW
            hold = float(s[c + C_HOLD])
            out.append(
                {
                    "state": names.get(float(s[c + C_STATE]), "?"),
                    "role": float(s[c + C_ROLE]),
                    "qty": hold,
                    "open_price": float(s[c + C_COST]) / hold if hold > 0 else float("nan"),
                    "open_fee": float(s[c + C_FEE]),
                }
            )
        return out

    def funds_status(self) -> dict[str, Any]:
        """Insufficient funds and add funds: pauses, WARNINGs, whether it is paused for funds
        now (and still polling), the margin M (with what was added) and add-funds counts."""
        s = self.state
        if not s.size:
            return {}
        paused = self.lifecycle_state.value == "PAUSED" and bool(s[S_FUNDS_PAUSED])
        return {
            "funds_pauses": int(s[S_FUNDS_PAUSES]),
            "funds_poll_warnings": int(s[S_FUNDS_WARNINGS]),
            "paused_for_funds": paused,
            "funds_polling": paused and bool(s[S_FUNDS + FD_EPISODE]),
            "investment": float(s[H.H_INVESTMENT]),
            "add_funds_count": int(s[S_AF_COUNT]),
            "add_funds_refused": int(s[S_AF_REFUSED]),
        }

    def metrics(self, mark: float | None = None) -> dict[str, Any]:
        if not self.state.size:
            return {}
        s = self.state
        c = self.config
        if mark is None:
            mark = self._last_close if self._last_close == self._last_close else float(s[S_MARK])
        unrealized = 0.0
        for k in range(int(s[S_N_CELLS])):
            base = CELLS + k * CW
            hold = float(s[base + C_HOLD])
            if hold > 0:
                unrealized += (
                    hold * mark * s[base + C_ROLE] - s[base + C_COST] * s[base + C_ROLE]
                ) - s[base + C_FEE]
        realized = float(s[H.H_REALIZED])
        total = realized + unrealized
        pos = float(s[S_POS])
        avg = float(s[S_AVG])
        liq = float("nan")
        if pos > 0:
            liq = avg * (1 - LIQ_FRACTION / c.leverage)
        elif pos < 0:
            liq = avg * (1 + LIQ_FRACTION / c.leverage)
        margin_used = abs(pos) * mark / c.leverage
        equity = float(s[H.H_INVESTMENT]) + total
        if s[S_FUNDS_PAUSED] > 0 and s[S_FUNDS_WARN] > 0 and self.lifecycle_state.value == "PAUSED":
            logger.warning("futures_grid: still paused for funds after the last balance poll")
        out = self.bot_metrics()
        out.update(
            {
                "grid_profit": float(s[S_GRID_PROFIT]),
                "unrealized_pnl": float(unrealized),
                "total_pnl": float(total),
                "unpaired_pnl": float(total - s[S_GRID_PROFIT]),
                "position": pos,
                "avg_entry": avg if pos != 0 else float("nan"),
                "liq_price": liq,
                "liq_distance_pct": abs(mark - liq) / mark * 100 if liq == liq else float("nan"),
                "liq_buffer_level": float(s[S_LIQ_LEVEL]),
                "margin_used": margin_used,
                "margin_ratio": margin_used / equity if equity > 0 else float("inf"),
                "order_qty": float(s[S_Q]),
                "activation_price": float(s[S_P]) if s[S_ACTIVATED] else float("nan"),
                "out_of_range": bool(s[S_OUT] != 0),
                "range_exits": int(s[S_RANGE_EXITS]),
                "liquidated": bool(s[S_LIQUIDATED]),
                "funds_pauses": int(s[S_FUNDS_PAUSES]),
                "dust": float(s[S_DUST]),
                "rejected_orders": int(s[S_N_REJECTED]),
                "error_too_small": bool(s[S_ERROR] == ERR_TOO_SMALL),
            }
        )
        return out
