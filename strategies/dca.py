"""DCA (spot): a base order, an averaging ladder below it, a take-profit from the average.

STRATEGIES.md §3.2. One cycle runs from the base order to the full close of the position:

1. The base order (MARKET, or LIMIT at tick(P)) buys ``base_order_amount`` (SHORT: sells it).
2. On its fill at P0 the ladder goes out: order i of amount ``a_i = A·m^i/Σm^j`` at
   ``P0(1∓d_i)`` with ``d_i = step·Σ_{j≤i}k^j`` %, all of them or the first
   ``active_orders_limit`` (the rest are held and reserve nothing). A resting take-profit limit
   for the whole position sits at ``tick(avg(1±tp))``; the stop-loss is a price trigger at
   ``avg(1∓sl)``.
3. Each full averaging fill re-computes the average, re-places the take-profit, moves the stop
   and releases the next held order. Orders beyond the stop are never placed, and those the stop
   passes are cancelled (held again).
4. The take-profit fill closes the cycle: the rest is cancelled, the profit realised (average
   cost, net of fees), optionally reinvested (split base:A), and after ``cooldown_s`` the next
   cycle starts (through its start condition and the max/min price, if any).
5. The stop-loss closes the position at market and stops the bot.

The kernel is shared with DCA Futures (:mod:`strategies.dca_futures`): a params flag switches
amounts to margin (qty = margin·L/price), reduce-only exits, the liquidation buffer and pump
protection.

Realized PnL per reducing fill (§1, average-cost family):
``qty·(exit−avg)·dir − exit_fee − open_entry_fees·qty/pos``. Spot SHORT keeps its amounts and
profit in **base**: its sells bring quote, and every buy-back spends that quote, so the profit of
a closing buy is the base bought less the base it covers.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar, Literal

import numpy as np
from numba import njit
from pydantic import AliasChoices, Field, model_validator

from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.bots import header as H
from tradetower.bots.adapter import BotStrategy
from tradetower.bots.commands import forced_close_trigger_nb
from tradetower.bots.funds import (
    FD_EPISODE,
    FD_PAUSES,
    FD_WARN,
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
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError
from tradetower.jit_options import NO_NRT, kernel_jit
from tradetower.kernel_signature import KERNEL_SIGNATURE
from tradetower.kernel_tools import (
    arm_cross_nb,
    arm_trailing_nb,
    cancel_all_nb,
    cancel_tag_nb,
    disarm_tag_nb,
    floor_qty_nb,
    place_nb,
    round_price_nb,
    set_timer_nb,
)
from tradetower.lifecycle import Trigger

logger = logging.getLogger(__name__)

# Triggers the codes module does not name
RESERVATION_PLACED = C.TRIGGER_CODE[Trigger.RESERVATION_PLACED]
PRICE_CONDITION_MET = C.TRIGGER_CODE[Trigger.PRICE_CONDITION_MET]

# ------------------------------------------------------------------------------ params layout
P_DIR = 0  # +1 LONG, -1 SHORT
P_FUT = 1  # 1: futures (amounts are margin; reduce-only exits; liquidation buffer)
P_LEV = 2
P_BASE = 3  # base order amount (quote; spot SHORT: base; futures: margin)
P_A = 4  # averaging orders amount, total
P_N = 5
P_STEP = 6  # first step, fraction
P_M = 7
P_K = 8
P_AOL = 9  # active orders limit (0 = off)
P_BASE_LIMIT = 10  # 1: LIMIT base order at tick(P)
P_COND = 11
P_COND_PCT = 12  # PRICE_CHANGE: signed fraction
P_COND_PRICE = 13  # TRIGGER_PRICE
P_TP = 14  # fraction
P_TP_PRICE = 15  # > 0: absolute take-profit price (futures PRICE type)
P_TTP = 16
P_TTP_PCT = 17  # fraction
P_SL = 18  # fraction, 0 = off
P_SL_PRICE = 19  # > 0: absolute stop price (futures PRICE type)
P_TSL = 20
P_TSL_PCT = 21  # fraction
P_REINV = 22
P_REINV_PCT = 23  # fraction
P_LIMIT_PRICE = 24  # max_price (LONG) / min_price (SHORT); 0 = none
P_RESERVE = 25
P_COOLDOWN_MS = 26
P_LIQ_BUF = 27  # fraction
P_PUMP = 28
P_TICK = 29
P_LOT = 30
P_TICK_DEC = 31
P_LOT_DEC = 32
P_MIN_QTY = 33
P_MIN_NOTIONAL = 34
P_MAKER = 35
P_TAKER = 36
P_N_ADD = 37  # add-funds table: (bar, amount) pairs from P_ADD0
P_ADD0 = 38

# Start conditions
COND_IMMEDIATELY = 0
COND_PRICE_CHANGE = 1
COND_MANUAL = 2
COND_INDICATOR = 3
COND_TRADINGVIEW = 4
COND_TRIGGER_PRICE = 5
CONDITIONS = {
    "IMMEDIATELY": COND_IMMEDIATELY,
    "PRICE_CHANGE": COND_PRICE_CHANGE,
    "MANUAL": COND_MANUAL,
    "INDICATOR": COND_INDICATOR,
    "TRADINGVIEW": COND_TRADINGVIEW,
    "TRIGGER_PRICE": COND_TRIGGER_PRICE,
}

LIQ_FRACTION = 0.9  # liq = avg(1 ∓ 0.9/L): §3.3 choice
PUMP_WINDOW_MS = 60_000
PUMP_EVENTS = 4  # more than 3 events within 60 s
PROBE_LEVEL = 1e300  # a cross-down this high fires at the next bar's open: a price probe

# ------------------------------------------------------------------------------ state layout
NMAX = 100  # averaging orders at most
B = H.BOT_START
S_PHASE = B + 0
S_DEFER = B + 1  # stage of the start flow deferred while PAUSED or PUMP (0 = none)
S_BASE_AMT = B + 2  # current base order amount (reinvest and add funds change it)
S_A_AMT = B + 3  # current averaging total
S_P0 = B + 4  # base fill price of the cycle
S_REF = B + 5  # PRICE_CHANGE reference price
S_POS = B + 6  # open position (base units, >= 0)
S_COST = B + 7  # Σ qty·price of the open position
S_EFEES = B + 8  # entry fees of the open position
S_QHELD = B + 9  # spot SHORT: quote the sells brought in, net of fees
S_TAG_BASE = B + 10
S_TAG_TP = B + 11
S_TAG_CLOSE = B + 12
S_TAG_RES = B + 13
S_TP_QTY = B + 14
S_TP_PX = B + 15
S_TP_POS0 = B + 16  # position the take-profit order was sized for
S_CLOSE_QTY = B + 17
S_CLOSE_POS0 = B + 18
S_SL_STATIC = B + 19  # avg(1∓sl) (or the PRICE stop), NaN when off
S_PEAK = B + 20  # best price since the base fill (trailing SL), tracked at events
S_LIQ = B + 21
S_BUF_LVL = B + 22
S_PROBE_ARMED = B + 23
S_PROBE_CYCLE = B + 24
S_PROBE_PUMP = B + 25
S_PROBE_FUNDS = B + 26  # a poll resumed the bot: re-place what the pause held back
S_GEN = B + 27  # timer generation counter
S_GEN_COOL = B + 28
S_GEN_PUMP = B + 29
S_FUNDS_RESUMED_T = B + 30  # time of the last resume by a poll (the shared funds helper)
S_RING = B + 31  # 4 slots: times of the last fills (pump detection)
S_RING_N = B + 35
S_PUMP_COUNT = B + 36
S_FAIL_SLOT = B + 37  # order slot a funds rejection paused (-1 none)
S_BASE_SEEN = B + 38  # the account's base at the last event that carried the instrument
S_N_AVG_CYCLE = B + 39
S_N_AVG_CLOSED = B + 40  # averaging fills summed over closed cycles
S_CYCLE_T0 = B + 41
S_CYCLE_MS = B + 42  # summed duration of closed cycles
S_WINS = B + 43
S_LOSSES = B + 44
S_T_START = B + 45
S_T_LAST = B + 46
S_PNL_PEAK = B + 47
S_MAX_DD = B + 48
S_REINVESTED = B + 49
S_ADDED = B + 50
S_DUST = B + 51  # spot SHORT: quote left after buy-backs
S_LAST_PX = B + 52
S_CYCLE_PNL = B + 53
S_IGNORED = B + 54  # signals logged and ignored
S_SKIPPED_MIN = B + 55
S_CLOSE_KIND = B + 56  # slot of the market exit in flight (CLOSE or TTP)
S_EXIT_PX = B + 57
S_EXIT_LIQ_DIST = B + 58  # futures: (exit − liq)/exit at the last closing fill, fraction
S_MAX_MARGIN = B + 59
S_LIQUIDATED = B + 60
S_TRAILING_TP_COUNT = B + 61
S_BASE_DUST = B + 62  # a position left below the minimums when a cycle closed (not SHORT spot)
S_DUST_COST = B + 63  # its Σ qty·price
S_DUST_FEES = B + 64  # and its entry fees
S_FUNDS = B + 65  # the shared funds helper's 3 fields (tradetower.bots.funds), B+65..B+67
S_AV = B + 72
AV_LVL = 0  # unrounded level
AV_PX = 1  # tick-rounded price
AV_AMT = 2
AV_QTY = 3
AV_FILLED = 4
AV_STATUS = 5
AV_TAG = 6
N_AV = 7
N_FIELDS = S_AV - B + N_AV * NMAX

# Phases of a cycle
PH_IDLE = 0
PH_COOLDOWN = 1
PH_WAIT_PRICE = 2
PH_WAIT_COND = 3
PH_BASE = 4
PH_POS = 5
PH_CLOSING = 6
PH_DONE = 7
PH_DEFERRED = 8

# Averaging order status
AV_HELD = 0
AV_LIVE = 1
AV_FILLED_ST = 2
AV_DROPPED = 3

# Order slots (tag = seq·1000 + slot)
SL_BASE = 0
SL_TP = 1
SL_CLOSE = 2
SL_RES = 3
SL_TTP = 4
SL_AV0 = 10

# Trigger tags
T_SL = 1
T_TSL = 2
T_TPX = 3
T_TTP = 4
T_BUF = 5
T_COND = 6
T_PRICE = 7
T_PROBE = 8

# Timer kinds (tag = kind·1e6 + generation)
TM_COOL = 1
TM_PUMP = 2
# The funds polls (tradetower.bots.funds): episode e (from 0) polls on TAG_POLL + 6e + j, j = 0…5.
# They count up from kind 3: never a cooldown or pump timer (kinds 1, 2: below 3e6).
TAG_POLL = 3e6


# ------------------------------------------------------------------------------ helpers


@kernel_jit
def av_i(k: int, i: int) -> int:
    return S_AV + k * NMAX + i


@kernel_jit
def tick_nb(params: np.ndarray, price: float) -> float:
    """Half-up to the tick, as the venue rounds (simulator.nb.rounding)."""
    return round_price_nb(price, params[P_TICK], params[P_TICK_DEC])


@kernel_jit
def lot_nb(params: np.ndarray, qty: float) -> float:
    """Down to the lot step."""
    if qty <= 0.0:
        return 0.0
    return floor_qty_nb(qty, params[P_LOT], params[P_LOT_DEC])


@kernel_jit
def spot_short_nb(params: np.ndarray) -> bool:
    return params[P_FUT] == 0.0 and params[P_DIR] < 0


@kernel_jit
def amount_qty_nb(params: np.ndarray, amount: float, price: float) -> float:
    """Order quantity for an amount: quote/price (spot LONG), margin·L/price (futures), or the
    amount itself (spot SHORT, in base)."""
    if spot_short_nb(params):
        return lot_nb(params, amount)
    lev = params[P_LEV] if params[P_FUT] > 0 else 1.0
    return lot_nb(params, amount * lev / price)


@kernel_jit
def meets_min_nb(params: np.ndarray, qty: float, price: float) -> bool:
    return qty > 0.0 and qty >= params[P_MIN_QTY] and qty * price >= params[P_MIN_NOTIONAL] - 1e-12


@kernel_jit
def new_tag_nb(state: np.ndarray, slot: int) -> float:
    seq = state[H.H_SEQ] + 1.0
    state[H.H_SEQ] = seq
    return seq * 1000.0 + slot


@kernel_jit
def move_nb(state: np.ndarray, to: int, trigger: int) -> None:
    """A lifecycle transition; an invalid one is refused and counted (H_N_REJECTED)."""
    H.transition_nb(state, to, trigger)


@kernel_jit
def pausable_nb(st: int) -> bool:
    """The states §2 lets a pause (user or insufficient funds) leave from."""
    return (
        st == C.ACTIVE
        or st == C.TRAILING
        or st == C.PUMP
        or st == C.WAITING
        or st == C.FUNDS_RESERVED
    )


@kernel_jit
def avg_nb(state: np.ndarray) -> float:
    pos = state[S_POS]
    return state[S_COST] / pos if pos > 0.0 else 0.0


@kernel_jit
def unrealized_nb(params: np.ndarray, state: np.ndarray, price: float) -> float:
    """Open position marked at ``price``, less its entry fees and a taker exit (profit ccy)."""
    pos = state[S_POS]
    if pos <= 0.0 or not price > 0.0:
        return 0.0
    if spot_short_nb(params):
        return state[S_QHELD] / (price * (1.0 + params[P_TAKER])) - pos
    d = params[P_DIR]
    return pos * (price - avg_nb(state)) * d - state[S_EFEES] - pos * price * params[P_TAKER]


@kernel_jit
def sl_level_nb(params: np.ndarray, state: np.ndarray) -> float:
    """The stop level in force: the static stop, raised by the trailing stop (LONG)."""
    lvl = state[S_SL_STATIC]
    if params[P_TSL] > 0 and state[S_PEAK] > 0.0:
        d = params[P_DIR]
        trail = state[S_PEAK] * (1.0 - d * params[P_TSL_PCT])
        if np.isnan(lvl):
            lvl = trail
        elif d > 0:
            lvl = max(lvl, trail)
        else:
            lvl = min(lvl, trail)
    return lvl


@kernel_jit
def beyond_sl_nb(params: np.ndarray, state: np.ndarray, price: float) -> bool:
    lvl = sl_level_nb(params, state)
    if np.isnan(lvl):
        return False
    if params[P_DIR] > 0:
        return price <= lvl
    return price >= lvl


@kernel_jit
def arm_probe_nb(state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """A cross-down far above any price fires at the next bar's open with that price: timers
    carry no price, this brings one."""
    if state[S_PROBE_ARMED] > 0:
        return n
    state[S_PROBE_ARMED] = 1.0
    return arm_cross_nb(actions, n, 0, PROBE_LEVEL, False, T_PROBE)


@kernel_jit
def timer_nb(state: np.ndarray, actions: np.ndarray, n: int, due: float, kind: int) -> int:
    gen = state[S_GEN] + 1.0
    state[S_GEN] = gen
    if kind == TM_COOL:
        state[S_GEN_COOL] = gen
    else:
        state[S_GEN_PUMP] = gen
    return set_timer_nb(actions, n, due, kind * 1e6 + gen)


# ------------------------------------------------------------------------------ ladder


@kernel_jit
def build_ladder_nb(params: np.ndarray, state: np.ndarray, p0: float) -> None:
    n_av = int(params[P_N])
    d = params[P_DIR]
    m = params[P_M]
    k = params[P_K]
    sum_m = 0.0
    for j in range(n_av):
        sum_m += m**j
    dev = 0.0
    for i in range(n_av):
        dev += params[P_STEP] * k**i
        lvl = p0 * (1.0 - d * dev)
        px = tick_nb(params, lvl)
        amt = state[S_A_AMT] * m**i / sum_m
        state[av_i(AV_LVL, i)] = lvl
        state[av_i(AV_PX, i)] = px
        state[av_i(AV_AMT, i)] = amt
        state[av_i(AV_QTY, i)] = amount_qty_nb(params, amt, px) if px > 0.0 else 0.0
        state[av_i(AV_FILLED, i)] = 0.0
        state[av_i(AV_STATUS, i)] = AV_HELD if px > 0.0 else AV_DROPPED
        state[av_i(AV_TAG, i)] = -1.0


@kernel_jit
def release_ladder_nb(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Place held averaging orders in ladder order, up to the active-orders limit, never beyond
    the stop. Blocked in PUMP and outside an open cycle."""
    if state[S_PHASE] != PH_POS or int(state[H.H_STATE]) == C.PUMP:
        return n
    n_av = int(params[P_N])
    aol = int(params[P_AOL])
    live = 0
    for i in range(n_av):
        if state[av_i(AV_STATUS, i)] == AV_LIVE:
            live += 1
    side = params[P_DIR]
    for i in range(n_av):
        if state[av_i(AV_STATUS, i)] != AV_HELD:
            continue
        if aol > 0 and live >= aol:
            break
        px = state[av_i(AV_PX, i)]
        if beyond_sl_nb(params, state, px):
            break
        qty = state[av_i(AV_QTY, i)]
        if not meets_min_nb(params, qty, px):
            state[av_i(AV_STATUS, i)] = AV_DROPPED  # SKIPPED_MIN
            state[S_SKIPPED_MIN] += 1.0
            continue
        tag = new_tag_nb(state, SL_AV0 + i)
        n = place_nb(actions, n, 0, side, K.LIMIT, px, qty, tag, False, False)
        state[av_i(AV_TAG, i)] = tag
        state[av_i(AV_STATUS, i)] = AV_LIVE
        live += 1
    return n


@kernel_jit
def cancel_live_ladder_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, beyond_only: bool
) -> int:
    """Cancel live averaging orders (all, or those the stop passes); they are held again."""
    for i in range(int(params[P_N])):
        if state[av_i(AV_STATUS, i)] != AV_LIVE:
            continue
        if beyond_only and not beyond_sl_nb(params, state, state[av_i(AV_PX, i)]):
            continue
        n = cancel_tag_nb(actions, n, 0, state[av_i(AV_TAG, i)])
        state[av_i(AV_TAG, i)] = -1.0
        state[av_i(AV_STATUS, i)] = AV_HELD
        # A partly filled order keeps its filled part; what is left is re-sized on release.
        filled = state[av_i(AV_FILLED, i)]
        if filled > 0.0:
            state[av_i(AV_QTY, i)] = lot_nb(params, state[av_i(AV_QTY, i)] - filled)
            state[av_i(AV_FILLED, i)] = 0.0
    return n


# ------------------------------------------------------------------------------ exits


@kernel_jit
def tp_price_nb(params: np.ndarray, state: np.ndarray) -> float:
    if params[P_TP_PRICE] > 0.0:
        return tick_nb(params, params[P_TP_PRICE])
    return tick_nb(params, avg_nb(state) * (1.0 + params[P_DIR] * params[P_TP]))


@kernel_jit
def exit_qty_nb(params: np.ndarray, state: np.ndarray, price: float, rate: float) -> float:
    """The whole position (spot SHORT: all the quote the sells brought, spent at ``price``)."""
    if spot_short_nb(params):
        return lot_nb(params, state[S_QHELD] / (price * (1.0 + rate)))
    return lot_nb(params, state[S_POS])


@kernel_jit
def place_tp_nb(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Cancel the take-profit and place it again for the whole position."""
    if state[S_TAG_TP] >= 0:
        n = cancel_tag_nb(actions, n, 0, state[S_TAG_TP])
        state[S_TAG_TP] = -1.0
    if state[S_POS] <= 0.0:
        return n
    px = tp_price_nb(params, state)
    state[S_TP_PX] = px
    if params[P_TTP] > 0:
        st = int(state[H.H_STATE])
        if st == C.TRAILING:
            move_nb(state, C.ACTIVE, C.TRAILING_DONE)
        n = disarm_tag_nb(actions, n, T_TTP)
        n = disarm_tag_nb(actions, n, T_TPX)
        return arm_cross_nb(actions, n, 0, px, params[P_DIR] > 0, T_TPX)
    qty = exit_qty_nb(params, state, px, params[P_MAKER])
    if qty <= 0.0:
        return n
    tag = new_tag_nb(state, SL_TP)
    n = place_nb(actions, n, 0, -params[P_DIR], K.LIMIT, px, qty, tag, False, params[P_FUT] > 0)
    state[S_TAG_TP] = tag
    state[S_TP_QTY] = qty
    state[S_TP_POS0] = state[S_POS]
    return n


@kernel_jit
def arm_sl_nb(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """(Re-)arm the static stop at avg(1∓sl) (or the PRICE stop)."""
    if params[P_SL] <= 0.0 and params[P_SL_PRICE] <= 0.0:
        state[S_SL_STATIC] = np.nan
        return n
    lvl = params[P_SL_PRICE]
    if lvl <= 0.0:
        lvl = avg_nb(state) * (1.0 - params[P_DIR] * params[P_SL])
    state[S_SL_STATIC] = lvl
    n = disarm_tag_nb(actions, n, T_SL)
    return arm_cross_nb(actions, n, 0, lvl, params[P_DIR] < 0, T_SL)


@kernel_jit
def arm_buffer_nb(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Futures: liq = avg(1∓0.9/L); the buffer trigger at liq/(1−b) (SHORT liq/(1+b))."""
    if params[P_FUT] <= 0.0:
        return n
    n = disarm_tag_nb(actions, n, T_BUF)
    if state[S_POS] <= 0.0:
        state[S_LIQ] = np.nan
        state[S_BUF_LVL] = np.nan
        return n
    d = params[P_DIR]
    avg = avg_nb(state)
    liq = avg * (1.0 - d * LIQ_FRACTION / params[P_LEV])
    lvl = liq / (1.0 - d * params[P_LIQ_BUF])
    state[S_LIQ] = liq
    state[S_BUF_LVL] = lvl
    margin = state[S_COST] / params[P_LEV]
    if margin > state[S_MAX_MARGIN]:
        state[S_MAX_MARGIN] = margin
    return arm_cross_nb(actions, n, 0, lvl, d < 0, T_BUF)


@kernel_jit
def disarm_all_nb(state: np.ndarray, actions: np.ndarray, n: int) -> int:
    for tag in (T_SL, T_TSL, T_TPX, T_TTP, T_BUF, T_COND, T_PRICE):
        n = disarm_tag_nb(actions, n, tag)
    return n


# ------------------------------------------------------------------------------ accounting


@kernel_jit
def book_entry_nb(state: np.ndarray, params: np.ndarray, qty: float, px: float, fee: float) -> None:
    state[S_POS] += qty
    state[S_COST] += qty * px
    state[S_EFEES] += fee
    state[H.H_FEES] += fee
    if spot_short_nb(params):
        state[S_QHELD] += qty * px - fee


@kernel_jit
def book_exit_nb(
    state: np.ndarray, params: np.ndarray, qty: float, px: float, fee: float, sized_qty: float
) -> float:
    """Realize a reducing fill; returns the realized PnL (profit currency)."""
    state[H.H_FEES] += fee
    pos = state[S_POS]
    if pos <= 0.0:
        return 0.0
    avg = avg_nb(state)
    if spot_short_nb(params):
        # The order was sized to spend the quote of ``S_*_POS0`` base sold: a fill of ``qty``
        # covers that share of it; the base bought beyond the cover is the profit.
        pos0 = state[S_CLOSE_POS0] if sized_qty < 0 else state[S_TP_POS0]
        total = abs(sized_qty)
        covered = min(pos, pos0 * qty / total) if total > 0 else pos
        realized = qty - covered
        state[S_QHELD] -= qty * px + fee
    else:
        covered = min(qty, pos)
        realized = covered * (px - avg) * params[P_DIR] - fee - state[S_EFEES] * covered / pos
    state[S_EFEES] -= state[S_EFEES] * covered / pos
    state[S_COST] -= covered * avg
    state[S_POS] = pos - covered
    lot = params[P_LOT]
    if state[S_POS] <= max(lot * 0.5, 1e-12):
        state[S_POS] = 0.0
        state[S_COST] = 0.0
        state[S_EFEES] = 0.0
    state[H.H_REALIZED] += realized
    state[S_CYCLE_PNL] += realized
    state[S_EXIT_PX] = px
    if params[P_FUT] > 0 and state[S_LIQ] == state[S_LIQ] and px > 0:
        state[S_EXIT_LIQ_DIST] = (px - state[S_LIQ]) / px * params[P_DIR]
    return realized


# ------------------------------------------------------------------------------ flows


@kernel_jit
def can_act_nb(state: np.ndarray) -> bool:
    """False while PAUSED or PUMP: exposure-increasing starts are deferred."""
    st = int(state[H.H_STATE])
    return st != C.PAUSED and st != C.PUMP


@kernel_jit
def place_base_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, price: float
) -> int:
    d = params[P_DIR]
    limit = params[P_BASE_LIMIT] > 0
    px = tick_nb(params, price)
    qty = amount_qty_nb(params, state[S_BASE_AMT], px)
    tag = new_tag_nb(state, SL_BASE)
    if limit:
        n = place_nb(actions, n, 0, d, K.LIMIT, px, qty, tag, False, False)
    else:
        n = place_nb(actions, n, 0, d, K.MARKET, np.nan, qty, tag, False, False)
    state[S_TAG_BASE] = tag
    state[S_PHASE] = PH_BASE
    return n


@kernel_jit
def start_flow_nb(
    params: np.ndarray,
    state: np.ndarray,
    actions: np.ndarray,
    n: int,
    stage: int,
    price: float,
    now: float,
) -> int:
    """Walk the start checks from ``stage``: 2 max/min price, 3 start condition, 4 base order.

    Moves the lifecycle: INITIALIZING → ACTIVE / WAITING / FUNDS_RESERVED; after a closed cycle
    ACTIVE → WAITING / FUNDS_RESERVED; WAITING → ACTIVE; FUNDS_RESERVED → WAITING / ACTIVE.
    """
    if not can_act_nb(state):
        state[S_DEFER] = stage
        state[S_PHASE] = PH_DEFERRED
        return n
    state[S_DEFER] = 0.0
    st = int(state[H.H_STATE])
    d = params[P_DIR]
    state[S_LAST_PX] = price
    if stage <= 2 and params[P_LIMIT_PRICE] > 0.0:
        lim = params[P_LIMIT_PRICE]
        if (d > 0 and price > lim) or (d < 0 and price < lim):
            n = disarm_tag_nb(actions, n, T_PRICE)
            n = arm_cross_nb(actions, n, 0, lim, d < 0, T_PRICE)
            reserve = params[P_RESERVE] > 0
            if reserve:
                inv = state[S_BASE_AMT] + state[S_A_AMT]
                px = tick_nb(params, price * (0.5 if d > 0 else 1.5))
                if spot_short_nb(params):
                    qty = lot_nb(params, inv)
                elif params[P_FUT] > 0:
                    qty = lot_nb(params, inv * params[P_LEV] / px)
                else:
                    qty = lot_nb(params, inv / (px * (1.0 + params[P_MAKER])))
                tag = new_tag_nb(state, SL_RES)
                n = place_nb(actions, n, 0, d, K.LIMIT, px, qty, tag, False, False)
                state[S_TAG_RES] = tag
            state[S_PHASE] = PH_WAIT_PRICE
            if st == C.INITIALIZING:
                if reserve:
                    move_nb(state, C.FUNDS_RESERVED, RESERVATION_PLACED)
                else:
                    move_nb(state, C.WAITING, C.START_CONDITION_PENDING)
            elif st == C.ACTIVE:
                move_nb(state, C.FUNDS_RESERVED if reserve else C.WAITING, C.CYCLE_CLOSED)
            return n
    if stage <= 3 and params[P_COND] != COND_IMMEDIATELY:
        cond = int(params[P_COND])
        met = False
        if cond == COND_PRICE_CHANGE:
            pct = params[P_COND_PCT]
            state[S_REF] = price
            n = disarm_tag_nb(actions, n, T_COND)
            n = arm_cross_nb(actions, n, 0, price * (1.0 + pct), pct > 0, T_COND)
        elif cond == COND_TRIGGER_PRICE:
            lvl = params[P_COND_PRICE]
            if lvl == price:
                met = True
            else:
                n = disarm_tag_nb(actions, n, T_COND)
                n = arm_cross_nb(actions, n, 0, lvl, lvl > price, T_COND)
        if not met:
            state[S_PHASE] = PH_WAIT_COND
            if st == C.INITIALIZING:
                move_nb(state, C.WAITING, C.START_CONDITION_PENDING)
            elif st == C.ACTIVE:
                move_nb(state, C.WAITING, C.CYCLE_CLOSED)
            elif st == C.FUNDS_RESERVED:
                move_nb(state, C.WAITING, PRICE_CONDITION_MET)
            return n
    if st == C.INITIALIZING:
        move_nb(state, C.ACTIVE, C.USER_START)
    elif st == C.WAITING:
        move_nb(state, C.ACTIVE, C.START_CONDITION_MET)
    elif st == C.FUNDS_RESERVED:
        move_nb(state, C.ACTIVE, PRICE_CONDITION_MET)
    state[S_CYCLE_T0] = now
    state[S_N_AVG_CYCLE] = 0.0
    state[S_CYCLE_PNL] = 0.0
    return place_base_nb(params, state, actions, n, price)


@kernel_jit
def setup_exits_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, p0: float
) -> int:
    """After the base (or reservation) fill: take-profit, stops, buffer, ladder."""
    state[S_P0] = p0
    state[S_PEAK] = p0
    state[S_PHASE] = PH_POS
    n = place_tp_nb(params, state, actions, n)
    n = arm_sl_nb(params, state, actions, n)
    if params[P_TSL] > 0:
        n = disarm_tag_nb(actions, n, T_TSL)
        n = arm_trailing_nb(actions, n, 0, p0, params[P_TSL_PCT], params[P_DIR] > 0, T_TSL)
    n = arm_buffer_nb(params, state, actions, n)
    return release_ladder_nb(params, state, actions, n)


@kernel_jit
def after_entry_nb(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """An averaging order is done (full fill, or part filled then cancelled)."""
    if state[S_TAG_CLOSE] >= 0:
        return n  # the position is being closed at market
    n = place_tp_nb(params, state, actions, n)
    n = arm_sl_nb(params, state, actions, n)
    n = cancel_live_ladder_nb(params, state, actions, n, True)
    return release_ladder_nb(params, state, actions, n)


@kernel_jit
def close_cycle_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, price: float, now: float
) -> int:
    """The position is closed by the take-profit: realize, reinvest, start the next cycle."""
    n = cancel_live_ladder_nb(params, state, actions, n, False)
    if state[S_TAG_TP] >= 0:
        n = cancel_tag_nb(actions, n, 0, state[S_TAG_TP])
        state[S_TAG_TP] = -1.0
    n = disarm_all_nb(state, actions, n)
    state[S_TAG_CLOSE] = -1.0
    rest = state[S_POS]
    if spot_short_nb(params):
        # Base sold and not bought back (the buy-back was cut by the minimums or the funds): a
        # loss in base; the quote left over is dust.
        state[H.H_REALIZED] -= rest
        state[S_CYCLE_PNL] -= rest
        state[S_DUST] += state[S_QHELD]
        state[S_QHELD] = 0.0
    elif rest > 0.0:
        state[S_BASE_DUST] += rest
        state[S_DUST_COST] += state[S_COST]
        state[S_DUST_FEES] += state[S_EFEES]
    state[S_POS] = 0.0
    state[S_COST] = 0.0
    state[S_EFEES] = 0.0
    state[S_LIQ] = np.nan
    state[S_BUF_LVL] = np.nan
    pnl = state[S_CYCLE_PNL]
    state[H.H_CYCLES] += 1.0
    if pnl > 0:
        state[S_WINS] += 1.0
    else:
        state[S_LOSSES] += 1.0
    state[S_N_AVG_CLOSED] += state[S_N_AVG_CYCLE]
    state[S_CYCLE_MS] += now - state[S_CYCLE_T0]
    if params[P_REINV] > 0 and pnl > 0:
        # R = pct·max(profit, 0), split in the base:A ratio.
        r = params[P_REINV_PCT] * pnl
        base = state[S_BASE_AMT]
        a_amt = state[S_A_AMT]
        inv = base + a_amt
        state[S_BASE_AMT] = base + r * base / inv
        state[S_A_AMT] = a_amt + r * a_amt / inv
        state[S_REINVESTED] += r
    if int(state[H.H_STATE]) == C.TRAILING:
        move_nb(state, C.ACTIVE, C.TRAILING_DONE)
    cool = params[P_COOLDOWN_MS]
    if cool > 0.0:
        state[S_PHASE] = PH_COOLDOWN
        if int(state[H.H_STATE]) == C.ACTIVE:
            move_nb(state, C.WAITING, C.CYCLE_CLOSED)
        return timer_nb(state, actions, n, now + cool, TM_COOL)
    return start_flow_nb(params, state, actions, n, 2, price, now)


@kernel_jit
def exit_rest_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, price: float, now: float
) -> int:
    """The take-profit is reached: cancel the averaging orders and exit what is left of the
    position at market (all of it after a trailing take-profit; a part an averaging order
    added after the take-profit was sized); with nothing left, the cycle closes."""
    if state[S_POS] > 0.0:
        n = cancel_live_ladder_nb(params, state, actions, n, False)
        n = place_close_nb(params, state, actions, n, price, SL_TTP)
        if state[S_TAG_CLOSE] >= 0:
            return n
    return close_cycle_nb(params, state, actions, n, price, now)


@kernel_jit
def begin_close_nb(
    params: np.ndarray,
    state: np.ndarray,
    actions: np.ndarray,
    n: int,
    trigger: int,
    close_position: bool,
    price: float,
) -> int:
    """CLOSING: cancel everything, close the position at market (or keep it), then finish."""
    st = int(state[H.H_STATE])
    if st == C.CLOSING or st == C.STOPPED or st == C.COMPLETED:
        return n
    if st == C.ERROR and trigger != C.USER_STOP and trigger != C.KILL_SWITCH:
        return n
    move_nb(state, C.CLOSING, trigger)
    n = cancel_all_nb(actions, n, 0)
    n = disarm_all_nb(state, actions, n)
    state[S_TAG_BASE] = -1.0
    state[S_TAG_TP] = -1.0
    state[S_TAG_RES] = -1.0
    state[S_TAG_CLOSE] = -1.0
    for i in range(int(params[P_N])):
        if state[av_i(AV_STATUS, i)] == AV_LIVE:
            state[av_i(AV_STATUS, i)] = AV_HELD
            state[av_i(AV_TAG, i)] = -1.0
    state[S_PHASE] = PH_CLOSING
    if close_position and state[S_POS] > 0.0:
        n = place_close_nb(params, state, actions, n, price, SL_CLOSE)
        if state[S_TAG_CLOSE] >= 0:
            return n
    return finish_nb(state, n)


@kernel_jit
def place_close_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, price: float, slot: int
) -> int:
    """A market exit of the whole position (spot SHORT: buy back with all its quote)."""
    qty = exit_qty_nb(params, state, price, params[P_TAKER])
    if qty <= 0.0 or (params[P_MIN_QTY] > 0 and qty < params[P_MIN_QTY]):
        state[S_TAG_CLOSE] = -1.0
        return n
    tag = new_tag_nb(state, slot)
    n = place_nb(
        actions, n, 0, -params[P_DIR], K.MARKET, np.nan, qty, tag, False, params[P_FUT] > 0
    )
    state[S_TAG_CLOSE] = tag
    state[S_CLOSE_QTY] = qty
    state[S_CLOSE_POS0] = state[S_POS]
    return n


@kernel_jit
def finish_nb(state: np.ndarray, n: int) -> int:
    H.finish_closing_nb(state)
    state[S_PHASE] = PH_DONE
    state[S_TAG_CLOSE] = -1.0
    return n


# ------------------------------------------------------------------------------ funds
# The shared rule (tradetower.bots.funds) decides pauses and polls; the bot says what it needs.


@kernel_jit
def pause_for_funds_nb(
    state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int, slot: int
) -> int:
    """A funds refusal of ``slot`` (a resume places it again): PAUSED (insufficient_funds) once
    per episode, with balance polls at 0/15/30/60/120/300 s."""
    state[S_FAIL_SLOT] = slot
    running = pausable_nb(int(state[H.H_STATE]))
    tag_poll = new_episode_poll_tag_nb(state, S_FUNDS, TAG_POLL)
    return funds_pause_nb(
        state, S_FUNDS, S_FUNDS_RESUMED_T, running, event[K.E_TIME], actions, n, tag_poll
    )


@kernel_jit
def ladder_need_nb(params: np.ndarray, state: np.ndarray) -> float:
    """What the averaging orders :func:`release_ladder_nb` would place now cost the account:
    quote (spot LONG), base (spot SHORT) or margin (futures), before fees."""
    if state[S_PHASE] != PH_POS:
        return 0.0
    n_av = int(params[P_N])
    aol = int(params[P_AOL])
    live = 0
    for i in range(n_av):
        if state[av_i(AV_STATUS, i)] == AV_LIVE:
            live += 1
    need = 0.0
    for i in range(n_av):
        if state[av_i(AV_STATUS, i)] != AV_HELD:
            continue
        if aol > 0 and live >= aol:
            break
        px = state[av_i(AV_PX, i)]
        if beyond_sl_nb(params, state, px):
            break
        qty = state[av_i(AV_QTY, i)]
        if not meets_min_nb(params, qty, px):
            continue
        if spot_short_nb(params):
            need += qty
        elif params[P_FUT] > 0:
            need += qty * px / params[P_LEV]
        else:
            need += qty * px
        live += 1
    return need


@kernel_jit
def start_need_nb(params: np.ndarray, state: np.ndarray, stage: int, price: float) -> float:
    """What the start flow from ``stage`` would place at ``price``: the reservation (the whole
    investment) while the price is beyond max/min price, else the base order."""
    lim = params[P_LIMIT_PRICE]
    d = params[P_DIR]
    if stage <= 2 and lim > 0.0 and ((d > 0 and price > lim) or (d < 0 and price < lim)):
        return float(state[S_BASE_AMT] + state[S_A_AMT]) if params[P_RESERVE] > 0 else 0.0
    return float(state[S_BASE_AMT])


@kernel_jit
def funds_there_nb(params: np.ndarray, state: np.ndarray, event: np.ndarray) -> bool:
    """At a poll: does the account cover all a resume would place (the refused base order or
    reservation, a start the pause deferred, the held averaging orders), priced at the last
    known price? Spot LONG: free quote, taker fee included; spot SHORT: the base not held by
    live sells, as the last event with the instrument reported it (a timer carries none);
    futures: equity less the position's margin, taker fee on the notional."""
    price = state[S_LAST_PX]
    slot = int(state[S_FAIL_SLOT])
    phase = state[S_PHASE]
    need = ladder_need_nb(params, state)
    if slot == SL_BASE and phase == PH_BASE:
        need += start_need_nb(params, state, 4, price)
    elif slot == SL_RES and phase == PH_WAIT_PRICE:
        need += start_need_nb(params, state, 2, price)
    elif phase == PH_DEFERRED and state[S_DEFER] > 0:
        need += start_need_nb(params, state, int(state[S_DEFER]), price)
    if spot_short_nb(params):
        have = state[S_BASE_SEEN]
        for i in range(int(params[P_N])):
            if state[av_i(AV_STATUS, i)] == AV_LIVE:
                have -= state[av_i(AV_QTY, i)] - state[av_i(AV_FILLED, i)]
    elif params[P_FUT] > 0:
        have = event[K.E_EQUITY] - state[S_POS] * price / params[P_LEV]
        need *= 1.0 + params[P_TAKER] * params[P_LEV]
    else:
        have = event[K.E_FREE]
        need *= 1.0 + params[P_TAKER]
    return bool(have >= need - 1e-9)


@kernel_jit
def on_funds_poll_nb(
    params: np.ndarray,
    state: np.ndarray,
    event: np.ndarray,
    actions: np.ndarray,
    n: int,
    tag_poll: float,
) -> int:
    """A balance poll of the current episode (``tag_poll``). Funds there: resume
    (funds_available) now; the orders the pause held back go out at the next bar's open, whose
    price the probe brings (a timer carries none). Else the polls the pause had no room for are
    armed."""
    there = funds_there_nb(params, state, event)
    outcome = funds_poll_nb(state, S_FUNDS, S_FUNDS_RESUMED_T, event, tag_poll, there)
    if outcome == POLL_WAIT:
        return funds_arm_owed_nb(state, S_FUNDS, event, tag_poll, actions, n)
    if outcome != POLL_RESUME:
        return n
    move_nb(state, int(state[H.H_RESUME_TO]), C.FUNDS_AVAILABLE)
    state[S_FUNDS + FD_EPISODE] = 0.0
    state[S_PROBE_FUNDS] = 1.0
    return arm_probe_nb(state, actions, n)


@kernel_jit
def replace_failed_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, price: float, now: float
) -> int:
    """Resume after a funds pause: place again the order that failed."""
    slot = int(state[S_FAIL_SLOT])
    state[S_FAIL_SLOT] = -1.0
    if slot == SL_BASE and state[S_PHASE] == PH_BASE:
        return place_base_nb(params, state, actions, n, price)
    if slot == SL_RES and state[S_PHASE] == PH_WAIT_PRICE:
        return start_flow_nb(params, state, actions, n, 2, price, now)
    if slot >= SL_AV0 or slot == SL_TP:
        if slot == SL_TP:
            n = place_tp_nb(params, state, actions, n)
        return release_ladder_nb(params, state, actions, n)
    return n


@kernel_jit
def replace_owed_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, price: float, now: float
) -> int:
    """What a pause held back: the refused order again, a deferred start, the held ladder."""
    if state[S_FAIL_SLOT] >= 0:
        n = replace_failed_nb(params, state, actions, n, price, now)
    if state[S_PHASE] == PH_DEFERRED and state[S_DEFER] > 0:
        n = start_flow_nb(params, state, actions, n, int(state[S_DEFER]), price, now)
    elif state[S_PHASE] == PH_POS:
        n = release_ladder_nb(params, state, actions, n)
    return n


@kernel_jit
def resume_nb(
    params: np.ndarray,
    state: np.ndarray,
    actions: np.ndarray,
    n: int,
    trigger: int,
    price: float,
    now: float,
) -> int:
    """PAUSED → resume_to (a user resume, or add funds); what the pause held back goes out."""
    if int(state[H.H_STATE]) != C.PAUSED:
        return n
    move_nb(state, int(state[H.H_RESUME_TO]), trigger)
    state[S_FUNDS + FD_EPISODE] = 0.0
    state[S_FUNDS + FD_WARN] = 0.0
    state[S_PROBE_FUNDS] = 0.0
    return replace_owed_nb(params, state, actions, n, price, now)


@kernel_jit
def add_funds_nb(
    params: np.ndarray,
    state: np.ndarray,
    actions: np.ndarray,
    n: int,
    x: float,
    price: float,
    now: float,
) -> int:
    """Doc-05 algorithm (§5 choice 7): rescale base and A by (I+x)/I; re-size the unfilled
    averaging orders at their prices; a filled base waits for the next cycle."""
    inv = state[S_BASE_AMT] + state[S_A_AMT]
    if x <= 0.0 or inv <= 0.0:
        return n
    base_new = (inv + x) * state[S_BASE_AMT] / inv
    state[S_BASE_AMT] = base_new
    state[S_A_AMT] = inv + x - base_new
    state[H.H_INVESTMENT] += x
    state[S_ADDED] += x
    if state[S_PHASE] == PH_BASE and state[S_TAG_BASE] >= 0 and state[S_POS] <= 0.0:
        n = cancel_tag_nb(actions, n, 0, state[S_TAG_BASE])
        state[S_TAG_BASE] = -1.0
        n = place_base_nb(params, state, actions, n, price)
    elif state[S_PHASE] == PH_POS:
        n_av = int(params[P_N])
        m = params[P_M]
        sum_m = 0.0
        for j in range(n_av):
            sum_m += m**j
        for i in range(n_av):
            stt = state[av_i(AV_STATUS, i)]
            if stt != AV_HELD and stt != AV_LIVE:
                continue
            amt = state[S_A_AMT] * m**i / sum_m
            px = state[av_i(AV_PX, i)]
            state[av_i(AV_AMT, i)] = amt
            if stt == AV_LIVE:
                n = cancel_tag_nb(actions, n, 0, state[av_i(AV_TAG, i)])
                state[av_i(AV_TAG, i)] = -1.0
                state[av_i(AV_STATUS, i)] = AV_HELD
            done = state[av_i(AV_FILLED, i)]
            state[av_i(AV_FILLED, i)] = 0.0
            qty = lot_nb(params, amount_qty_nb(params, amt, px) - done)
            state[av_i(AV_QTY, i)] = qty
            if qty <= 0.0:
                state[av_i(AV_STATUS, i)] = AV_FILLED_ST
        n = arm_sl_nb(params, state, actions, n)
        n = release_ladder_nb(params, state, actions, n)
    if int(state[H.H_STATE]) == C.PAUSED and state[S_FAIL_SLOT] >= 0:
        n = resume_nb(params, state, actions, n, C.FUNDS_AVAILABLE, price, now)
    return n


@kernel_jit
def pump_check_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, now: float
) -> int:
    """Futures pump protection: more than 3 fills within 60 s → PUMP; each fill re-arms the
    clearing timer at t_last + 60 s."""
    if params[P_PUMP] <= 0.0 or params[P_FUT] <= 0.0:
        return n
    k = int(state[S_RING_N])
    state[S_RING + k % PUMP_EVENTS] = now
    state[S_RING_N] = k + 1
    st = int(state[H.H_STATE])
    if st == C.PUMP:
        return timer_nb(state, actions, n, now + PUMP_WINDOW_MS, TM_PUMP)
    if k + 1 >= PUMP_EVENTS and st == C.ACTIVE:
        oldest = state[S_RING + (k + 1) % PUMP_EVENTS]
        if now - oldest < PUMP_WINDOW_MS:
            move_nb(state, C.PUMP, C.PUMP_DETECTED)
            state[S_PUMP_COUNT] += 1.0
            n = cancel_live_ladder_nb(params, state, actions, n, False)
            return timer_nb(state, actions, n, now + PUMP_WINDOW_MS, TM_PUMP)
    return n


@kernel_jit
def pump_clear_nb(
    params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, price: float, now: float
) -> int:
    """PUMP → ACTIVE: held orders the price has passed are dropped, the rest released; a cycle
    start deferred by the pump runs from the current price."""
    if int(state[H.H_STATE]) != C.PUMP:
        return n
    move_nb(state, C.ACTIVE, C.PUMP_CLEARED)
    d = params[P_DIR]
    for i in range(int(params[P_N])):
        if state[av_i(AV_STATUS, i)] == AV_HELD:
            px = state[av_i(AV_PX, i)]
            if (d > 0 and px >= price) or (d < 0 and px <= price):
                state[av_i(AV_STATUS, i)] = AV_DROPPED
    if state[S_PHASE] == PH_POS:
        n = release_ladder_nb(params, state, actions, n)
    elif state[S_PHASE] == PH_DEFERRED and state[S_DEFER] > 0:
        n = start_flow_nb(params, state, actions, n, int(state[S_DEFER]), price, now)
    return n


# ------------------------------------------------------------------------------ events


@kernel_jit
def on_fill_nb(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, now: float
) -> int:
    n = 0
    qty = event[K.E_QTY]
    px = event[K.E_PRICE]
    fee = event[K.E_FEE]
    done = event[K.E_REMAINING] <= 0.0
    if event[K.E_CODE] == 1.0:
        # The venue liquidated the position: realize it and stop.
        book_exit_nb(state, params, qty, px, fee, qty)
        state[S_LIQUIDATED] = 1.0
        state[S_POS] = 0.0
        return begin_close_nb(params, state, actions, n, C.LIQUIDATION_BUFFER, False, px)
    tag = event[K.E_TAG]
    slot = int(tag) % 1000
    if slot == SL_BASE and tag == state[S_TAG_BASE]:
        book_entry_nb(state, params, qty, px, fee)
        n = pump_check_nb(params, state, actions, n, now)
        if params[P_FUT] > 0:
            n = arm_buffer_nb(params, state, actions, n)
        if done:
            state[S_TAG_BASE] = -1.0
            build_ladder_nb(params, state, avg_nb(state))
            n = setup_exits_nb(params, state, actions, n, avg_nb(state))
        return n
    if slot >= SL_AV0:
        i = slot - SL_AV0
        if i >= NMAX or tag != state[av_i(AV_TAG, i)]:
            return n
        book_entry_nb(state, params, qty, px, fee)
        state[av_i(AV_FILLED, i)] += qty
        n = pump_check_nb(params, state, actions, n, now)
        if params[P_FUT] > 0:
            n = arm_buffer_nb(params, state, actions, n)
        if done:
            state[av_i(AV_STATUS, i)] = AV_FILLED_ST
            state[av_i(AV_TAG, i)] = -1.0
            state[S_N_AVG_CYCLE] += 1.0
            n = after_entry_nb(params, state, actions, n)
        return n
    if slot == SL_RES and tag == state[S_TAG_RES]:
        book_entry_nb(state, params, qty, px, fee)
        if params[P_FUT] > 0:
            n = arm_buffer_nb(params, state, actions, n)
        if done:
            # It filled anyway: the base and every averaging order, filled at that price.
            state[S_TAG_RES] = -1.0
            n = disarm_tag_nb(actions, n, T_PRICE)
            build_ladder_nb(params, state, avg_nb(state))
            for i in range(int(params[P_N])):
                state[av_i(AV_STATUS, i)] = AV_FILLED_ST
            state[S_N_AVG_CYCLE] = params[P_N]
            state[S_CYCLE_T0] = now
            state[S_CYCLE_PNL] = 0.0
            st = int(state[H.H_STATE])
            if st == C.FUNDS_RESERVED:
                move_nb(state, C.ACTIVE, PRICE_CONDITION_MET)
            elif st == C.WAITING:
                move_nb(state, C.ACTIVE, C.START_CONDITION_MET)
            n = setup_exits_nb(params, state, actions, n, avg_nb(state))
        return n
    if slot == SL_TP and tag == state[S_TAG_TP]:
        book_exit_nb(state, params, qty, px, fee, state[S_TP_QTY])
        n = pump_check_nb(params, state, actions, n, now)
        if params[P_FUT] > 0:
            n = arm_buffer_nb(params, state, actions, n)
        if done:
            state[S_TAG_TP] = -1.0
            n = exit_rest_nb(params, state, actions, n, px, now)
        return n
    if (slot in (SL_CLOSE, SL_TTP)) and tag == state[S_TAG_CLOSE]:
        book_exit_nb(state, params, qty, px, fee, -state[S_CLOSE_QTY])
        n = pump_check_nb(params, state, actions, n, now)
        if done:
            state[S_TAG_CLOSE] = -1.0
            if slot == SL_TTP:
                return close_cycle_nb(params, state, actions, n, px, now)
            return finish_nb(state, n)
        if params[P_FUT] > 0:
            n = arm_buffer_nb(params, state, actions, n)
        return n
    return n


@kernel_jit
def on_cancel_nb(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, now: float
) -> int:
    """Only events for orders the bot still holds live matter: its own cancels clear the tag
    first. What is left is a venue rejection or an external cancel."""
    n = 0
    tag = event[K.E_TAG]
    slot = int(tag) % 1000 if tag > 0 else -1
    reason = int(event[K.E_CODE])
    funds = reason == K.R_INSUFFICIENT_FUNDS or reason == K.R_MIN_SIZE
    price = event[K.E_MARK]
    filled = event[K.E_QTY]
    if slot == SL_BASE and tag == state[S_TAG_BASE]:
        state[S_TAG_BASE] = -1.0
        if state[S_POS] > 0.0:
            build_ladder_nb(params, state, avg_nb(state))
            return setup_exits_nb(params, state, actions, n, avg_nb(state))
        if funds:
            return pause_for_funds_nb(state, event, actions, n, SL_BASE)
        return place_base_nb(params, state, actions, n, price)  # external cancel: again
    if slot >= SL_AV0:
        i = slot - SL_AV0
        if i >= NMAX or tag != state[av_i(AV_TAG, i)]:
            return n
        state[av_i(AV_TAG, i)] = -1.0
        if filled > 0.0:
            state[av_i(AV_STATUS, i)] = AV_FILLED_ST
            state[S_N_AVG_CYCLE] += 1.0
            return after_entry_nb(params, state, actions, n)
        if reason == K.R_INSUFFICIENT_FUNDS:
            state[av_i(AV_STATUS, i)] = AV_HELD
            return pause_for_funds_nb(state, event, actions, n, slot)
        state[av_i(AV_STATUS, i)] = AV_DROPPED  # external cancel or SKIPPED_MIN: dropped
        if reason == K.R_MIN_SIZE:
            state[S_SKIPPED_MIN] += 1.0
        return release_ladder_nb(params, state, actions, n)
    if slot == SL_TP and tag == state[S_TAG_TP]:
        state[S_TAG_TP] = -1.0
        if reason == K.R_INSUFFICIENT_FUNDS:
            return pause_for_funds_nb(state, event, actions, n, SL_TP)
        return place_tp_nb(params, state, actions, n)  # the position keeps its take-profit
    if slot == SL_RES and tag == state[S_TAG_RES]:
        state[S_TAG_RES] = -1.0
        if funds:
            return pause_for_funds_nb(state, event, actions, n, SL_RES)
        return start_flow_nb(params, state, actions, n, 2, price, now)  # re-created
    if (slot in (SL_CLOSE, SL_TTP)) and tag == state[S_TAG_CLOSE]:
        state[S_TAG_CLOSE] = -1.0
        # Re-submit what is left; a remainder below the minimums counts as closed (dust).
        n = place_close_nb(params, state, actions, n, price, slot)
        if state[S_TAG_CLOSE] < 0:
            if slot == SL_TTP:
                return close_cycle_nb(params, state, actions, n, price, now)
            if int(state[H.H_STATE]) == C.CLOSING:
                return finish_nb(state, n)
        return n
    return n


@kernel_jit
def on_trigger_nb(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, now: float
) -> int:
    n = 0
    tag = int(event[K.E_TAG])
    price = event[K.E_PRICE]
    st = int(state[H.H_STATE])
    if tag == T_PROBE:
        state[S_PROBE_ARMED] = 0.0
        if state[S_PROBE_FUNDS] > 0:
            state[S_PROBE_FUNDS] = 0.0
            if pausable_nb(int(state[H.H_STATE])):
                # A poll resumed the bot; its orders go out now, which counts as the time of
                # the resume: refused again now, the bot pauses without new polls.
                state[S_FUNDS_RESUMED_T] = now
                n = replace_owed_nb(params, state, actions, n, price, now)
        if state[S_PROBE_PUMP] > 0:
            state[S_PROBE_PUMP] = 0.0
            n = pump_clear_nb(params, state, actions, n, price, now)
        if state[S_PROBE_CYCLE] > 0:
            state[S_PROBE_CYCLE] = 0.0
            if state[S_PHASE] == PH_COOLDOWN:
                n = start_flow_nb(params, state, actions, n, 2, price, now)
        return n
    if tag in (T_SL, T_TSL):
        if state[S_PHASE] == PH_POS:
            return begin_close_nb(params, state, actions, n, C.STOP_LOSS_HIT, True, price)
        return n
    if tag == T_BUF:
        if state[S_POS] > 0.0:
            return begin_close_nb(params, state, actions, n, C.LIQUIDATION_BUFFER, True, price)
        return n
    if tag == T_TPX:
        if state[S_PHASE] == PH_POS:
            if st == C.ACTIVE:
                move_nb(state, C.TRAILING, C.TRAILING_STARTED)
            state[S_TRAILING_TP_COUNT] += 1.0
            n = disarm_tag_nb(actions, n, T_TTP)
            return arm_trailing_nb(
                actions, n, 0, price, params[P_TTP_PCT], params[P_DIR] > 0, T_TTP
            )
        return n
    if tag == T_TTP:
        if state[S_PHASE] == PH_POS and state[S_TAG_CLOSE] < 0:
            return exit_rest_nb(params, state, actions, n, price, now)
        return n
    if tag == T_PRICE:
        if state[S_PHASE] == PH_WAIT_PRICE:
            if state[S_TAG_RES] >= 0:
                n = cancel_tag_nb(actions, n, 0, state[S_TAG_RES])
                state[S_TAG_RES] = -1.0
            return start_flow_nb(params, state, actions, n, 3, price, now)
        return n
    if tag == T_COND:
        if state[S_PHASE] == PH_WAIT_COND:
            return start_flow_nb(params, state, actions, n, 4, price, now)
        return n
    return n


@kernel_jit
def on_timer_nb(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, now: float
) -> int:
    n = 0
    tag = event[K.E_TAG]
    kind = int(tag // 1e6)
    gen = tag - kind * 1e6
    st = int(state[H.H_STATE])
    if kind == TM_COOL and gen == state[S_GEN_COOL] and state[S_PHASE] == PH_COOLDOWN:
        if st == C.PAUSED:
            state[S_DEFER] = 2.0
            state[S_PHASE] = PH_DEFERRED
            return n
        state[S_PROBE_CYCLE] = 1.0
        return arm_probe_nb(state, actions, n)
    if kind == TM_PUMP and gen == state[S_GEN_PUMP] and st == C.PUMP:
        state[S_PROBE_PUMP] = 1.0
        return arm_probe_nb(state, actions, n)
    # Earlier episodes' polls still fire (timers cannot be cancelled): their tags are ignored.
    tag_poll = episode_poll_tag_nb(state, S_FUNDS, TAG_POLL)
    if is_funds_poll_nb(state, S_FUNDS, event, tag_poll):
        return on_funds_poll_nb(params, state, event, actions, n, tag_poll)
    return n


@kernel_jit
def add_funds_amount_nb(params: np.ndarray, bar: float) -> float:
    total = 0.0
    for j in range(int(params[P_N_ADD])):
        if params[P_ADD0 + 2 * j] == bar:
            total += params[P_ADD0 + 2 * j + 1]
    return total


@kernel_jit
def on_signal_nb(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, now: float
) -> int:
    n = 0
    code = int(event[K.E_CODE])
    price = event[K.E_PRICE]
    st = int(state[H.H_STATE])
    if code == C.CMD_CLOSE:
        return begin_close_nb(params, state, actions, n, C.CLOSE_SIGNAL, True, price)
    if code == C.CMD_STOP:
        return begin_close_nb(params, state, actions, n, C.USER_STOP, False, price)
    closer = forced_close_trigger_nb(code)
    if closer >= 0:
        return begin_close_nb(params, state, actions, n, closer, True, price)
    if code == C.CMD_PAUSE:
        if pausable_nb(st):
            move_nb(state, C.PAUSED, C.USER_PAUSE)
            return n
    elif code == C.CMD_RESUME:
        if st == C.PAUSED:
            return resume_nb(params, state, actions, n, C.USER_RESUME, price, now)
    elif code == C.CMD_ADD_FUNDS:
        x = add_funds_amount_nb(params, event[K.E_BAR])
        if x > 0.0:
            return add_funds_nb(params, state, actions, n, x, price, now)
    elif code == C.CMD_START or code == C.SIG_BUY or code == C.SIG_SELL:
        cond = int(params[P_COND])
        wanted = False
        if code == C.CMD_START:
            wanted = cond == COND_MANUAL
        elif cond in (COND_INDICATOR, COND_TRADINGVIEW):
            wanted = code == int(params[P_DIR])
        if wanted and state[S_PHASE] == PH_WAIT_COND:
            return start_flow_nb(params, state, actions, n, 4, price, now)
        if wanted and state[S_PHASE] == PH_DEFERRED and state[S_DEFER] >= 3:
            state[S_DEFER] = 4.0
            return n
    state[S_IGNORED] += 1.0
    return n


@kernel_jit
def track_nb(params: np.ndarray, state: np.ndarray, event: np.ndarray) -> None:
    """Peak since the base fill, the last price, the account's base and the bot's PnL
    drawdown, at each event that carries the instrument."""
    if event[K.E_INST] < 0:
        return
    state[S_BASE_SEEN] = event[K.E_POS_QTY]
    price = event[K.E_MARK]
    if not price > 0.0:
        return
    state[S_LAST_PX] = price
    if state[S_PHASE] == PH_POS:
        if params[P_DIR] > 0:
            state[S_PEAK] = max(state[S_PEAK], price)
        else:
            state[S_PEAK] = min(state[S_PEAK], price)
    pnl = state[H.H_REALIZED] + unrealized_nb(params, state, price)
    if pnl > state[S_PNL_PEAK]:
        state[S_PNL_PEAK] = pnl
    dd = state[S_PNL_PEAK] - pnl
    if dd > state[S_MAX_DD]:
        state[S_MAX_DD] = dd


@kernel_jit
def dca_event_nb(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray
) -> int:
    """The shared DCA / DCA Futures decision function (kernel ABI)."""
    et = int(event[K.E_TYPE])
    st = int(state[H.H_STATE])
    if st == C.STOPPED or st == C.COMPLETED:
        return 0
    now = event[K.E_TIME]
    state[H.H_BAR] = event[K.E_BAR]
    if et != K.EV_STOP:
        state[H.H_TIME] = now
        state[S_T_LAST] = now
    track_nb(params, state, event)
    if et == K.EV_START:
        state[S_T_START] = now
        state[S_FAIL_SLOT] = -1.0
        return start_flow_nb(params, state, actions, 0, 2, event[K.E_PRICE], now)
    if et == K.EV_FILL:
        return on_fill_nb(params, state, event, actions, now)
    if et == K.EV_CANCEL:
        return on_cancel_nb(params, state, event, actions, now)
    if et == K.EV_TRIGGER:
        return on_trigger_nb(params, state, event, actions, now)
    if et == K.EV_TIMER:
        return on_timer_nb(params, state, event, actions, now)
    if et == K.EV_SIGNAL:
        return on_signal_nb(params, state, event, actions, now)
    if et == K.EV_STOP:
        # End of data or a user stop: the user-stop default closure, CANCEL_ORDERS (§5.15).
        return begin_close_nb(params, state, actions, 0, C.USER_STOP, False, state[S_LAST_PX])
    return 0


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def dca_on_event_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
    return dca_event_nb(params, state, event, actions)


# ------------------------------------------------------------------------------ config

COMMAND_CODES = frozenset(
    {
        C.SIG_BUY,
        C.SIG_SELL,
        C.CMD_START,
        C.CMD_CLOSE,
        C.CMD_PAUSE,
        C.CMD_RESUME,
        C.CMD_STOP,
        C.CMD_KILL,
        C.CMD_ADD_FUNDS,
    }
)
MAX_ADD_FUNDS = 64


def _camel(name: str) -> AliasChoices:
    head, *rest = name.split("_")
    return AliasChoices(name, head + "".join(p.title() for p in rest))


def deviations(step_pct: float, k: float, n: int) -> list[float]:
    """``d_i = step·Σ_{j≤i} k^j`` in %, i = 0..n−1."""
    out, acc = [], 0.0
    for i in range(n):
        acc += step_pct * k**i
        out.append(acc)
    return out


def amounts(total: float, m: float, n: int) -> list[float]:
    """``a_i = A·m^i / Σ m^j``."""
    if n <= 0:
        return []
    s = sum(m**j for j in range(n))
    return [total * m**i / s for i in range(n)]


class DcaConfig(FrozenConfig):
    """DCA (spot), STRATEGIES.md §3.2."""

    direction: Literal["LONG", "SHORT"] = Field(
        default="LONG", validation_alias=_camel("direction")
    )
    """LONG buys the dips; SHORT sells the rises (spot SHORT: amounts and profit in base)."""
    base_order_amount: float = Field(gt=0, validation_alias=_camel("base_order_amount"))
    """Base order amount: quote (spot SHORT: base; futures: margin)."""
    base_order_type: Literal["MARKET", "LIMIT"] = Field(
        default="MARKET", validation_alias=_camel("base_order_type")
    )
    """MARKET, or LIMIT at tick(P)."""
    base_order_condition: Literal[
        "IMMEDIATELY", "PRICE_CHANGE", "MANUAL", "INDICATOR", "TRADINGVIEW", "TRIGGER_PRICE"
    ] = Field(default="IMMEDIATELY", validation_alias=_camel("base_order_condition"))
    """When each cycle's base order goes out (§1 start conditions)."""
    start_price_change_pct: float | None = Field(
        default=None, gt=-100, le=1000, validation_alias=_camel("start_price_change_pct")
    )
    """PRICE_CHANGE: % from the price at cycle start (negative: a fall, positive: a rise)."""
    start_trigger_price: float | None = Field(
        default=None, gt=0, validation_alias=_camel("start_trigger_price")
    )
    """TRIGGER_PRICE: quote price whose crossing starts the cycle."""
    averaging_orders_amount: float = Field(
        default=0.0, ge=0, validation_alias=_camel("averaging_orders_amount")
    )
    """A: the total of all averaging orders (quote; spot SHORT: base; futures: margin)."""
    averaging_orders_quantity: int = Field(
        default=0, ge=0, le=100, validation_alias=_camel("averaging_orders_quantity")
    )
    """n: number of averaging orders."""
    averaging_orders_step: float | None = Field(
        default=None, ge=0.1, le=50, validation_alias=_camel("averaging_orders_step")
    )
    """First step, % from P0."""
    amount_multiplier: float = Field(
        default=1.0, ge=1.0, le=2.0, validation_alias=_camel("amount_multiplier")
    )
    """m: each averaging amount is m times the previous."""
    step_multiplier: float = Field(
        default=1.0, ge=1.0, le=2.0, validation_alias=_camel("step_multiplier")
    )
    """k: each step is k times the previous."""
    active_orders_limit_enabled: bool | None = Field(
        default=None, validation_alias=_camel("active_orders_limit_enabled")
    )
    """Default: on when active_orders_limit is given."""
    active_orders_limit: int | None = Field(
        default=None, ge=1, le=100, validation_alias=_camel("active_orders_limit")
    )
    """AOL: averaging orders resting at once; the rest are held and reserve nothing."""
    take_profit_pct: float = Field(ge=0.1, le=1000, validation_alias=_camel("take_profit_pct"))
    """Take-profit, % from the average entry."""
    trailing_take_profit: bool = Field(
        default=False, validation_alias=_camel("trailing_take_profit")
    )
    """Once the take-profit price is reached, trail the exit (price reversal, §5 choice 14)."""
    trailing_tp_pct: float = Field(
        default=0.5, gt=0, le=50, validation_alias=_camel("trailing_tp_pct")
    )
    """Trailing take-profit distance under the peak, %."""
    stop_loss_pct: float | None = Field(
        default=None, ge=0, lt=100, validation_alias=_camel("stop_loss_pct")
    )
    """Stop-loss, % from the average entry (None or 0: off)."""
    trailing_stop_loss: bool = Field(default=False, validation_alias=_camel("trailing_stop_loss"))
    """SL = max(avg(1−sl), peak(1−trail)), the peak measured since the base fill."""
    trailing_sl_pct: float | None = Field(
        default=None, gt=0, lt=100, validation_alias=_camel("trailing_sl_pct")
    )
    """Trailing stop distance, % (default: stop_loss_pct)."""
    reinvest_profit_enabled: bool = Field(
        default=False, validation_alias=_camel("reinvest_profit_enabled")
    )
    """Add the share below of each cycle's profit to the next cycles (split base:A)."""
    reinvest_profit_pct: float = Field(
        default=100.0, ge=0, le=100, validation_alias=_camel("reinvest_profit_pct")
    )
    """Share of a cycle's profit reinvested, %."""
    max_price: float | None = Field(default=None, gt=0, validation_alias=_camel("max_price"))
    """LONG: no base order above this quote price (delayed entry)."""
    min_price: float | None = Field(default=None, gt=0, validation_alias=_camel("min_price"))
    """SHORT: no base order below this quote price (delayed entry)."""
    reserve_funds_enabled: bool | None = Field(
        default=None, validation_alias=_camel("reserve_funds_enabled")
    )
    """While waiting on max/min price, reserve the investment with a far limit (default: on)."""
    cooldown_s: float = Field(default=0.0, ge=0, validation_alias=_camel("cooldown_s"))
    """Seconds between a cycle's close and the next base order."""
    commands: dict[int, int] = Field(default_factory=dict)
    """Backtests: bar → signal code (tradetower.bots.codes: CMD_*, ±1 indicator signals)."""
    add_funds: dict[int, float] = Field(default_factory=dict)
    """Backtests: bar → amount added at that bar (same currency as the amounts)."""

    @model_validator(mode="after")
    def _rules(self) -> DcaConfig:
        n = self.averaging_orders_quantity
        if n > 0:
            if self.averaging_orders_amount <= 0:
                raise ValueError(
                    f"averaging_orders_amount ({self.averaging_orders_amount}) must be > 0 "
                    f"with {n} averaging orders"
                )
            if self.averaging_orders_step is None:
                raise ValueError("averaging_orders_step: required with averaging orders")
            last = deviations(self.averaging_orders_step, self.step_multiplier, n)[-1]
            if last >= 100:
                raise ValueError(
                    f"averaging_orders_step ({self.averaging_orders_step}) with step_multiplier "
                    f"{self.step_multiplier} puts the last averaging order {last:g}% away: "
                    "d_(n-1) must stay below 100%"
                )
        if self.max_price is not None and self.direction != "LONG":
            raise ValueError("max_price applies to LONG only (SHORT uses min_price)")
        if self.min_price is not None and self.direction != "SHORT":
            raise ValueError("min_price applies to SHORT only (LONG uses max_price)")
        if self.base_order_condition == "PRICE_CHANGE" and not self.start_price_change_pct:
            raise ValueError("start_price_change_pct: required (non-zero) with PRICE_CHANGE")
        if self.base_order_condition == "TRIGGER_PRICE" and self.start_trigger_price is None:
            raise ValueError("start_trigger_price: required with TRIGGER_PRICE")
        if self.trailing_stop_loss and not (self.trailing_sl_pct or self.stop_loss_pct):
            raise ValueError("trailing_sl_pct: required with trailing_stop_loss (or stop_loss_pct)")
        if self.active_orders_limit_enabled and self.active_orders_limit is None:
            raise ValueError("active_orders_limit: required when active_orders_limit_enabled")
        for bar, code in self.commands.items():
            if bar < 0 or code not in COMMAND_CODES:
                raise ValueError(
                    f"commands: {bar}: {code} is not a bar ≥ 0 and a signal code "
                    f"({sorted(COMMAND_CODES)})"
                )
        if len(self.add_funds) > MAX_ADD_FUNDS:
            raise ValueError(f"add_funds: at most {MAX_ADD_FUNDS} entries")
        for bar, amount in self.add_funds.items():
            if bar < 0 or not amount > 0:
                raise ValueError(f"add_funds: {bar}: {amount} must be a bar ≥ 0 and an amount > 0")
        return self

    # --- derived ---
    @property
    def investment(self) -> float:
        return self.base_order_amount + self.averaging_orders_amount

    @property
    def aol(self) -> int:
        enabled = self.active_orders_limit_enabled
        if enabled is None:
            enabled = self.active_orders_limit is not None
        return int(self.active_orders_limit or 0) if enabled else 0

    @property
    def limit_price(self) -> float | None:
        return self.max_price if self.direction == "LONG" else self.min_price

    @property
    def reserve(self) -> bool:
        if self.reserve_funds_enabled is None:
            return self.limit_price is not None
        return self.reserve_funds_enabled


def _decimals(step: float) -> int:
    if step <= 0:
        return 12
    return max(0, math.ceil(-math.log10(step) - 1e-9))


class Dca(BotStrategy):
    """DCA (spot), STRATEGIES.md §3.2 (see the module docstring for the cycle).

    Choices where the spec is silent or ambiguous:

    - The stop level is a price trigger at the unrounded avg(1∓sl); the exit is a market order
      (CLOSE_TO_QUOTE; spot SHORT: CLOSE_TO_BASE, a buy with all the quote its sells brought).
    - A MARKET base order is sized from the price of the event that sends it (the bar close);
      its fill price is P0, from which the ladder is laid.
    - Trailing take-profit (§5 choice 14, price reversal): no resting take-profit; a cross at
      the take-profit price starts TRAILING and a trailing stop ``trailing_tp_pct`` under the
      running peak exits at market; the cycle then closes as on a take-profit fill.
    - Trailing stop-loss: an engine trailing trigger from P0 beside the static stop trigger
      (SL = the higher of the two). "Orders beyond the stop" are judged against the static stop
      and the peak seen at the bot's events.
    - Each cycle's base order waits for the start condition and for max/min price again; a
      cooldown is spent in WAITING. After a cooldown the max/min price is waited for in
      WAITING (§2 has no WAITING → FUNDS_RESERVED), with the reservation placed all the same.
    - Timers carry no price, so a cooldown, a pump clearing or a funds poll's resume continues
      at the next bar's open through a price probe (a cross trigger that fires at once).
    - Pause (command) keeps the resting orders and stops (the position stays protected) and
      defers the start of new cycles; resume runs what was deferred.
    - Insufficient funds follow the shared rule (:mod:`tradetower.bots.funds`): a funds
      rejection of the base, an averaging order, the take-profit or the reservation pauses the
      bot (insufficient_funds, once per episode) with balance polls at 0/15/30/60/120/300 s.
      A poll resumes it (funds_available) when the account covers all the resume places (the
      refused base order or reservation, a start the pause deferred, the held averaging orders
      the ladder releases; see :func:`funds_there_nb`), priced at the last known price; those
      orders go out at the next bar's open (the probe). Refused again then, the bot pauses
      without new polls. After the 300 s poll it stays PAUSED with a warning
      (:meth:`funds_status`); only resume or add funds resume it.
    - An externally cancelled averaging order is dropped (the next held one goes out); an
      externally cancelled base order, take-profit or reservation is placed again.
    - Add funds: a live base order is re-sized; averaging orders not yet filled are cancelled
      and placed again at their prices with ``a_i' = A'·m^i/Σm^j`` (less any part filled).
    - The end of the data (EV_STOP) is a user stop with the default closure CANCEL_ORDERS: the
      orders are cancelled, the position is kept (reported as unrealized), the bot is STOPPED.
    - ``daily_average`` divides the realized PnL by the days run, at least one.
    """

    name = "dca"
    Config: ClassVar[type[DcaConfig]] = DcaConfig
    kernel = dca_on_event_nb
    futures: ClassVar[bool] = False

    def __init__(self, config: DcaConfig | None = None, **fields: Any) -> None:
        super().__init__()
        self.config = config if config is not None else self.Config.parse(fields)
        self._instrument: Instrument | None = None
        self._params: np.ndarray | None = None
        self._first_close = math.nan
        self._last_close = math.nan
        self._end_ms = 0

    # --- params ---
    def _fill_params(self, p: np.ndarray) -> None:
        """Futures-only fields (DCA Futures overrides)."""
        p[P_LEV] = 1.0

    @property
    def params(self) -> np.ndarray:
        if self._params is None:
            self._params = self.build_params()
        return self._params

    def build_params(self) -> np.ndarray:
        c = self.config
        p = np.zeros(P_ADD0 + 2 * MAX_ADD_FUNDS)
        p[P_DIR] = 1.0 if c.direction == "LONG" else -1.0
        p[P_BASE] = c.base_order_amount
        p[P_A] = c.averaging_orders_amount
        p[P_N] = c.averaging_orders_quantity
        p[P_STEP] = (c.averaging_orders_step or 0.0) / 100.0
        p[P_M] = c.amount_multiplier
        p[P_K] = c.step_multiplier
        p[P_AOL] = c.aol
        p[P_BASE_LIMIT] = 1.0 if c.base_order_type == "LIMIT" else 0.0
        p[P_COND] = CONDITIONS[c.base_order_condition]
        p[P_COND_PCT] = (c.start_price_change_pct or 0.0) / 100.0
        p[P_COND_PRICE] = c.start_trigger_price or 0.0
        p[P_TP] = (c.take_profit_pct or 0.0) / 100.0
        p[P_TTP] = 1.0 if c.trailing_take_profit else 0.0
        p[P_TTP_PCT] = c.trailing_tp_pct / 100.0
        p[P_SL] = (c.stop_loss_pct or 0.0) / 100.0
        p[P_TSL] = 1.0 if c.trailing_stop_loss else 0.0
        p[P_TSL_PCT] = (c.trailing_sl_pct or c.stop_loss_pct or 0.0) / 100.0
        p[P_REINV] = 1.0 if c.reinvest_profit_enabled else 0.0
        p[P_REINV_PCT] = c.reinvest_profit_pct / 100.0
        p[P_LIMIT_PRICE] = c.limit_price or 0.0
        p[P_RESERVE] = 1.0 if c.reserve else 0.0
        p[P_COOLDOWN_MS] = c.cooldown_s * 1000.0
        inst = self._instrument
        if inst is not None:
            p[P_TICK] = inst.tick
            p[P_LOT] = inst.lot
            p[P_TICK_DEC] = _decimals(inst.tick)
            p[P_LOT_DEC] = _decimals(inst.lot)
            p[P_MIN_QTY] = inst.min_qty
            p[P_MIN_NOTIONAL] = inst.min_notional
            p[P_MAKER] = inst.maker_fee
            p[P_TAKER] = inst.taker_fee
        p[P_N_ADD] = len(c.add_funds)
        for j, (bar, amount) in enumerate(sorted(c.add_funds.items())):
            p[P_ADD0 + 2 * j] = bar
            p[P_ADD0 + 2 * j + 1] = amount
        self._fill_params(p)
        return p

    # --- run ---
    def initial_state(self, data: MarketData) -> np.ndarray:
        c = self.config
        state = H.new_state(N_FIELDS)
        state[S_BASE_AMT] = c.base_order_amount
        state[S_A_AMT] = c.averaging_orders_amount
        state[H.H_INVESTMENT] = c.investment
        for field in (S_TAG_BASE, S_TAG_TP, S_TAG_CLOSE, S_TAG_RES, S_FAIL_SLOT):
            state[field] = -1.0
        state[S_SL_STATIC] = np.nan
        state[S_LIQ] = np.nan
        state[S_BUF_LVL] = np.nan
        state[S_EXIT_LIQ_DIST] = np.nan
        close = data.ohlcv[:, 0, 3]
        valid = close[~np.isnan(close)]
        self._first_close = float(valid[0]) if valid.size else math.nan
        self._last_close = float(valid[-1]) if valid.size else math.nan
        self._end_ms = data.bar_time_ms(-1) if data.n_bars else 0
        self._params = None
        return state

    def signals(self, data: MarketData) -> np.ndarray | None:
        c = self.config
        if not c.commands and not c.add_funds:
            return None
        out = np.zeros(data.n_bars, dtype=np.int64)
        for bar in c.add_funds:
            if bar < data.n_bars:
                out[bar] = C.CMD_ADD_FUNDS
        for bar, code in c.commands.items():
            if bar < data.n_bars:
                out[bar] = code
        return out

    def check(self, instruments: dict[str, Instrument]) -> None:
        """Validation that needs the instrument: the initial orders must meet its minimums."""
        inst = next(iter(instruments.values()))
        self._instrument = inst
        self._check_instrument(inst)
        p = self._first_close
        if p == p:
            self._check_minimums(inst, p)
        self._params = self.build_params()

    def _check_instrument(self, inst: Instrument) -> None:
        pass

    def _qty(self, inst: Instrument, amount: float, price: float) -> float:
        if self.config.direction == "SHORT" and not self.futures:
            return inst.floor_qty(amount)
        lev = getattr(self.config, "leverage", 1.0) if self.futures else 1.0
        return inst.floor_qty(amount * lev / price)

    def _check_minimums(self, inst: Instrument, p: float) -> None:
        c = self.config

        def ok(qty: float, price: float) -> bool:
            return qty > 0 and qty >= inst.min_qty and qty * price >= inst.min_notional - 1e-12

        base_px = inst.round_price(p)
        if not ok(self._qty(inst, c.base_order_amount, base_px), base_px):
            raise ConfigError(
                "base_order_amount",
                f"base_order_amount ({c.base_order_amount}) at {base_px} is below the "
                f"instrument's minimums (lot {inst.lot}, min_qty {inst.min_qty}, "
                f"min_notional {inst.min_notional})",
            )
        n = c.averaging_orders_quantity
        if n:
            sign = 1.0 if c.direction == "LONG" else -1.0
            devs = deviations(c.averaging_orders_step or 0.0, c.step_multiplier, n)
            for i, (a, dev) in enumerate(
                zip(amounts(c.averaging_orders_amount, c.amount_multiplier, n), devs, strict=True)
            ):
                px = inst.round_price(p * (1 - sign * dev / 100))
                if not ok(self._qty(inst, a, px), px):
                    raise ConfigError(
                        "averaging_orders_amount",
                        f"averaging_orders_amount: averaging order {i} ({a:g} at {px}) is "
                        f"below the instrument's minimums (lot {inst.lot}, min_qty "
                        f"{inst.min_qty}, min_notional {inst.min_notional})",
                    )

    # --- results ---
    def metrics(self) -> dict[str, Any]:
        if not self.state.size:
            return {}
        s = self.state
        p = self.params
        out = self.bot_metrics()
        mark = self._last_close
        pos = float(s[S_POS])
        avg = float(s[S_COST] / pos) if pos > 0 else math.nan
        unreal = float(unrealized_nb(p, s, mark)) if mark == mark else 0.0
        realized = float(s[H.H_REALIZED])
        inv = float(s[H.H_INVESTMENT])
        cycles = int(s[H.H_CYCLES])
        n_av = int(p[P_N])
        status = s[S_AV + AV_STATUS * NMAX : S_AV + AV_STATUS * NMAX + n_av]
        days = max((self._end_ms - float(s[S_T_START])) / 86_400_000.0, 1.0)
        closed = float(s[S_WINS] + s[S_LOSSES])
        sl = float(sl_level_nb(p, s)) if pos > 0 else math.nan
        out.update(
            {
                "direction": self.config.direction,
                "profit_currency": "base"
                if self.config.direction == "SHORT" and not self.futures
                else "quote",
                "unrealized_pnl": unreal,
                "total_pnl": realized + unreal,
                "total_pnl_pct": (realized + unreal) / inv * 100.0 if inv > 0 else 0.0,
                "avg_entry_price": avg,
                "position": pos * float(p[P_DIR]),
                "base_fill_price": float(s[S_P0]) if s[S_P0] > 0 else math.nan,
                "averaging_orders_filled": int(s[S_N_AVG_CYCLE]),
                "averaging_orders_total": n_av,
                "averaging_orders_live": int(np.sum(status == AV_LIVE)) if pos > 0 else 0,
                "avg_averaging_orders_per_cycle": float(s[S_N_AVG_CLOSED]) / cycles
                if cycles
                else 0.0,
                "avg_cycle_duration_s": float(s[S_CYCLE_MS]) / cycles / 1000.0 if cycles else 0.0,
                # The deal's worst unrealized loss, against the investment (a bot figure; the
                # engine's max_drawdown_pct is the equity curve's).
                "deal_max_drawdown": float(s[S_MAX_DD]),
                "deal_max_drawdown_pct": float(s[S_MAX_DD]) / inv * 100.0 if inv > 0 else 0.0,
                "win_rate": float(s[S_WINS]) / closed if closed else 0.0,
                "daily_average": realized / days,
                "take_profit_price": float(s[S_TP_PX]) if pos > 0 else math.nan,
                "stop_loss_price": sl,
                "next_base_order_amount": float(s[S_BASE_AMT]),
                "next_averaging_amount": float(s[S_A_AMT]),
                "investment": inv,
                "reinvested": float(s[S_REINVESTED]),
                "funds_added": float(s[S_ADDED]),
                "funds_pauses": int(s[S_FUNDS + FD_PAUSES]),
                "trailing_tp_activations": int(s[S_TRAILING_TP_COUNT]),
                "skipped_min": int(s[S_SKIPPED_MIN]),
                "signals_ignored": int(s[S_IGNORED]),
                "quote_dust": float(s[S_DUST]),
                "base_dust": float(s[S_BASE_DUST]),
            }
        )
        if self.funds_status()["warning"]:
            logger.warning(
                "%s: no funds at the last balance poll; only a resume or add funds resumes it",
                self.name,
            )
        return out

    def funds_status(self) -> dict[str, Any]:
        """Insufficient funds (STRATEGIES.md §4): pauses so far, whether balance polls are still
        due, and the WARNING (the last poll found no funds, or the orders a poll resumed were
        refused again) until a resume or add funds answers it."""
        s = self.state
        if not s.size:
            return {"pauses": 0, "polling": False, "warning": False}
        return {
            "pauses": int(s[S_FUNDS + FD_PAUSES]),
            "polling": bool(s[S_FUNDS + FD_EPISODE] > 0),
            "warning": bool(s[S_FUNDS + FD_WARN] > 0),
        }

    def averaging_orders(self) -> list[dict[str, Any]]:
        """The current cycle's ladder: level, price, amount, qty, filled part and status."""
        s = self.state
        names = {AV_HELD: "HELD", AV_LIVE: "LIVE", AV_FILLED_ST: "FILLED", AV_DROPPED: "DROPPED"}
        out = []
        for i in range(int(self.params[P_N])):
            out.append(
                {
                    "index": i,
                    "level": float(s[av_i(AV_LVL, i)]),
                    "price": float(s[av_i(AV_PX, i)]),
                    "amount": float(s[av_i(AV_AMT, i)]),
                    "qty": float(s[av_i(AV_QTY, i)]),
                    "status": names[int(s[av_i(AV_STATUS, i)])],
                }
            )
        return out
