"""Loop: a spot grid around a fixed entry E, with no stop loss (STRATEGIES.md §3.6).

Layout (at start). ``E`` = the price at start; it never changes. Slice
``S = I/(n(1+max(f_m,f_t)))``. Buys rest at ``E(1−d)^i`` and sells at ``E(1+d)^i``, i = 1..n/2,
skipping any beyond ``low_price``/``high_price``. One market buy of ``floor_lot(S/E)`` per placed
sell buys their base; its fill price becomes their paired buy price. A buy is
``floor_lot(S/tick(price))``.

Events.
- Buy fill (qty, price b): a SELL of the same qty, paired with b, at (1) the highest known sell
  level without an active sell, else (2) one level above the top active sell if ≤ high, else
  (3) stacked on the highest sell.
- Sell fill: profit ``qty(sell−b) − fees`` (both legs' fees); spend ``qty·b + pct·max(profit,0)``
  (pct = 0 without reinvest); a BUY of ``floor_lot(spend/tick(level))`` at (1) the lowest buy
  level without an active buy, else (2) one level below the lowest active buy if ≥ low, else
  (3) stacked on the lowest buy.
- Known levels grow as levels are added, up to ``max_known_levels`` (500): past it a WARNING is
  logged (``known_levels_capped``) and orders stack instead.
- The order count stays constant; an external cancel leaves a gap; leaving the range does nothing.

Exits. No stop loss. TP: TOTAL_PNL_PERCENT (total PnL ≥ x%·I, a cross-up at the price where the
bot's quote + base·price − I reaches it, recomputed after every fill) or PRICE_TARGET (a cross-up
at the price). The closure follows ``exit_currency``: QUOTE → CLOSE_TO_QUOTE, BASE →
CLOSE_TO_BASE, BOTH → CANCEL_ORDERS; → COMPLETED. Add funds is rejected (counted).

Choices where the spec is silent (TradeTower's, a trader's reading):

- **Prices in sizing.** Quantities use the ticked order price (L2's 1.0663 at 50% needs it).
- **Level indices.** Levels are kept as exact powers ``E(1−d)^i``/``E(1+d)^j`` (never re-derived
  from rounded prices), so an extension below 95.099 is 94.148…, not 95.10·0.99.
- **The range.** ``low_price`` must lie below E and ``high_price`` above it; a layout that leaves
  no buy or no sell level (E outside the range, or the range narrower than one step) fails setup:
  ERROR, nothing placed. So does an initial order below the instrument's minimums.
- **Commands** (signals): CLOSE and STOP close per ``exit_currency`` → STOPPED; KILL →
  CLOSE_TO_QUOTE → STOPPED. PAUSE keeps resting orders working and books their fills but sends
  no new order until RESUME. ADD_FUNDS is rejected (409).
- **Insufficient funds** (an order refused for funds): PAUSED, balance polls at
  0/15/30/60/120/300 s, the first poll that finds the quote and base needed resumes and re-sends.
  A poll carries no position: the base is the position the venue last reported, less what
  resting sells hold. Each episode polls on timer tags of its own, so polls left from an earlier
  one are ignored.
- **Partial fills** are booked as they come; the counter-order follows the full fill. An external
  cancel of a partially filled order treats the filled part as the fill.
- **Total PnL** is the bot's quote + base·price − I (fees paid included, exit fees not).
"""

from __future__ import annotations

import logging
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
from tradetower.domain.instrument import Instrument, _decimals
from tradetower.errors import ConfigError
from tradetower.jit_options import NO_NRT, kernel_jit
from tradetower.kernel_signature import KERNEL_SIGNATURE
from tradetower.kernel_tools import (
    arm_cross_nb,
    cancel_tag_nb,
    disarm_tag_nb,
    floor_qty_nb,
    meets_min_nb,
    place_nb,
    round_price_nb,
)
from tradetower.lifecycle import Trigger

logger = logging.getLogger(__name__)

MAX_KNOWN_LEVELS = 500
SETUP_FAILED = C.TRIGGER_CODE[Trigger.SETUP_FAILED]

# ---------------------------------------------------------------- params (float64 vector)
P_I = 0
P_LOW = 1  # ≤ 0: none
P_HIGH = 2  # ≤ 0: none
P_D = 3
P_N = 4
P_REINV = 5  # fraction of a positive profit spent again (0 without reinvest)
P_TP_TYPE = 6  # 0 none, 1 total PnL %, 2 price target
P_TP_VAL = 7  # fraction of I, or a price
P_EXIT = 8  # 0 BOTH, 1 BASE, 2 QUOTE
P_MAXK = 9
P_TICK = 10
P_TICK_DEC = 11
P_LOT = 12
P_LOT_DEC = 13
P_MIN_QTY = 14
P_MIN_NOTIONAL = 15
P_MAKER = 16
P_TAKER = 17
N_PARAMS = 18

TP_NONE = 0
TP_PNL = 1
TP_PRICE = 2
EXIT_BOTH = 0
EXIT_BASE = 1
EXIT_QUOTE = 2

# ------------------------------------------------------------------------- state fields
B0 = H.BOT_START
F_E = B0 + 0
F_S = B0 + 1
F_MB = B0 + 2  # known buy levels: indices 1..MB
F_MS = B0 + 3  # known sell levels: indices 1..MS
F_CAPPED = B0 + 4  # additions refused at the cap
F_CAP_BAR = B0 + 5  # bar of the first refusal (−1 none)
F_BASE = B0 + 6
F_QUOTE = B0 + 7
F_REINVESTED = B0 + 8
F_START_T = B0 + 9
F_LAST_T = B0 + 10
F_LAST_PX = B0 + 11
F_FILLS = B0 + 12
F_INIT_ACTIVE = B0 + 13
F_INIT_QTY = B0 + 14
F_INIT_FILLED = B0 + 15
F_INIT_VALUE = B0 + 16
F_INIT_FEE = B0 + 17
F_INIT_RETRY = B0 + 18
F_BASE0 = B0 + 19  # base the start bought
F_CLOSE_ACTIVE = B0 + 20
F_CLOSE_MODE = B0 + 21
F_TP_LEVEL = B0 + 22  # armed TP price (0 = none)
F_EXT_CANCELS = B0 + 23
F_SKIPPED = B0 + 24
F_IGNORED = B0 + 25
F_AF_REJECTED = B0 + 26
F_FUNDS_EPISODE = B0 + 27
F_FUNDS_PAUSES = F_FUNDS_EPISODE + FD_PAUSES  # the shared funds helper's layout
F_FUNDS_WARN = F_FUNDS_EPISODE + FD_WARN
F_WINS = B0 + 30
F_SETUP_ERROR = B0 + 31
F_SELL_QTY0 = B0 + 32
F_BUY_FILLS = B0 + 33
F_SELL_FILLS = B0 + 34
F_FUNDS_RESUMED_T = B0 + 35  # time of the last resume by a poll
F_DATA_END = B0 + 36  # time of the data's last bar (daily figures)
F_POS = B0 + 37  # the position the venue last reported (a poll reports none)
N_SCALARS = 40
A_SLOTS = B0 + N_SCALARS
# per-slot arrays (n slots each)
S_SIDE = 0  # 0 empty, +1 buy, −1 sell
S_LEVEL = 1  # level index (buy i: E(1−d)^i; sell j: E(1+d)^j)
S_TARGET = 2
S_FILLED = 3
S_VALUE = 4
S_FEE = 5
S_PAIR = 6  # sells: the paired buy price b
S_OPEN_FEE = 7  # sells: the fee paid to buy the qty
S_LIVE = 8
S_PENDING = 9
S_WAIT_INIT = 10  # sells waiting for the initial market buy
S_SPEND = 11  # buys: the quote budget
N_SLOT_ARRAYS = 12

SLOT_TAG0 = 1000.0
TAG_INIT = 1.0
TAG_CLOSE = 3.0
TAG_TP = 11.0
TAG_POLL = 20.0  # funds episode e (from 0) polls on TAG_POLL + 6e + j, j = 0…5

MODE_CANCEL = 0
MODE_TO_BASE = 1
MODE_TO_QUOTE = 2


def state_size(order_count: int) -> int:
    return N_SCALARS + N_SLOT_ARRAYS * order_count


# ------------------------------------------------------------------------------- config


class LoopConfig(FrozenConfig):
    """Loop parameters (STRATEGIES.md §3.6); camelCase aliases accepted."""

    investment: float = Field(gt=0)
    """I, in quote."""
    low_price: float = Field(gt=0, validation_alias=AliasChoices("low_price", "lowPrice"))
    """No buys below this price (quote); must lie below E."""
    high_price: float | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("high_price", "highPrice")
    )
    """No sells above this price (quote; none = no limit); must lie above E."""
    order_distance: float = Field(
        ge=0.1, le=50, validation_alias=AliasChoices("order_distance", "orderDistance")
    )
    """d, % between neighbouring levels (geometric)."""
    order_count: int = Field(
        ge=10, le=40, validation_alias=AliasChoices("order_count", "orderCount")
    )
    """n orders in all (even): n/2 buys below E and n/2 sells above."""
    reinvest_profit: bool = Field(
        default=False, validation_alias=AliasChoices("reinvest_profit", "reinvestProfit")
    )
    """Whether positive cycle profits are partly spent again (``reinvest_profit_pct``)."""
    reinvest_profit_pct: float = Field(
        default=100.0,
        ge=0,
        le=100,
        validation_alias=AliasChoices("reinvest_profit_pct", "reinvestProfitPct"),
    )
    """Share (%) of each positive cycle profit spent again in the next buy."""
    take_profit_type: Literal["TOTAL_PNL_PERCENT", "PRICE_TARGET"] | None = Field(
        default=None, validation_alias=AliasChoices("take_profit_type", "takeProfitType")
    )
    """None: no take profit."""
    take_profit_pct: float | None = Field(
        default=None,
        ge=0.1,
        le=1000,
        validation_alias=AliasChoices("take_profit_pct", "takeProfitPct"),
    )
    """TOTAL_PNL_PERCENT: total PnL ≥ x%·I."""
    take_profit_price: float | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("take_profit_price", "takeProfitPrice")
    )
    """PRICE_TARGET: a cross-up at this price (quote)."""
    exit_currency: Literal["BASE", "QUOTE", "BOTH"] = Field(
        default="BOTH", validation_alias=AliasChoices("exit_currency", "exitCurrency")
    )
    """Closure on TP or stop: QUOTE sells the base, BASE buys with the quote, BOTH keeps both."""
    max_known_levels: int = Field(default=MAX_KNOWN_LEVELS, ge=2, le=MAX_KNOWN_LEVELS)
    """Cap on the known levels (a TradeTower choice: 500)."""
    commands: dict[int, int | Literal["CLOSE", "STOP", "PAUSE", "RESUME", "KILL", "ADD_FUNDS"]] = (
        Field(default_factory=dict)
    )
    """Backtests: commands by bar index, delivered as signals at the bar's close."""

    @model_validator(mode="after")
    def _rules(self) -> LoopConfig:
        if self.order_count % 2:
            raise ValueError(f"order_count ({self.order_count}) must be even")
        if self.high_price is not None and self.low_price >= self.high_price:
            raise ValueError(
                f"low_price ({self.low_price}) must be below high_price ({self.high_price})"
            )
        if self.take_profit_type == "TOTAL_PNL_PERCENT" and self.take_profit_pct is None:
            raise ValueError("take_profit_pct: required with take_profit_type TOTAL_PNL_PERCENT")
        if self.take_profit_type == "PRICE_TARGET" and self.take_profit_price is None:
            raise ValueError("take_profit_price: required with take_profit_type PRICE_TARGET")
        for bar in self.commands:
            if bar < 0:
                raise ValueError(f"commands: bar {bar} must be ≥ 0")
        return self


# ------------------------------------------------------------------------ kernel helpers


@kernel_jit
def _tick(params: np.ndarray, price: float) -> float:
    """Half-up to the tick (the venue's own rounding)."""
    return round_price_nb(price, params[P_TICK], params[P_TICK_DEC])


@kernel_jit
def _lot(params: np.ndarray, qty: float) -> float:
    """Down to the lot step."""
    if qty <= 0.0:
        return 0.0
    return floor_qty_nb(qty, params[P_LOT], params[P_LOT_DEC])


@kernel_jit
def _meets_min(params: np.ndarray, qty: float, price: float) -> bool:
    return meets_min_nb(qty, price, params[P_MIN_QTY], params[P_MIN_NOTIONAL])


@kernel_jit
def _slot(params: np.ndarray, arr: int, k: int) -> int:
    return A_SLOTS + arr * int(params[P_N]) + k


@kernel_jit
def _running(state: np.ndarray) -> bool:
    s = int(state[H.H_STATE])
    return s == C.ACTIVE or s == C.TRAILING


@kernel_jit
def _level_price(params: np.ndarray, state: np.ndarray, side: float, idx: float) -> float:
    if side > 0:
        return float(state[F_E] * (1.0 - params[P_D]) ** idx)
    return float(state[F_E] * (1.0 + params[P_D]) ** idx)


@kernel_jit
def _occupied(params: np.ndarray, state: np.ndarray, side: float, idx: float) -> bool:
    for k in range(int(params[P_N])):
        if state[_slot(params, S_SIDE, k)] == side and state[_slot(params, S_LEVEL, k)] == idx:
            return True
    return False


@kernel_jit
def _add_known(params: np.ndarray, state: np.ndarray) -> bool:
    """Room for one more known level? Past the cap: refuse and count (a WARNING)."""
    if state[F_MB] + state[F_MS] < params[P_MAXK]:
        return True
    if state[F_CAPPED] == 0:
        state[F_CAP_BAR] = state[H.H_BAR]
    state[F_CAPPED] += 1.0
    return False


@kernel_jit
def _sell_level(params: np.ndarray, state: np.ndarray) -> float:
    ms = int(state[F_MS])
    for j in range(ms, 0, -1):
        if not _occupied(params, state, -1.0, j):
            return float(j)
    top = 0.0
    for k in range(int(params[P_N])):
        if state[_slot(params, S_SIDE, k)] < 0:
            top = max(top, state[_slot(params, S_LEVEL, k)])
    cand = top + 1.0
    high = params[P_HIGH]
    if high <= 0.0 or _level_price(params, state, -1.0, cand) <= high + 1e-12:
        if cand <= ms:
            return cand
        if _add_known(params, state):
            state[F_MS] = cand
            return cand
    return max(top, 1.0)


@kernel_jit
def _buy_level(params: np.ndarray, state: np.ndarray) -> float:
    mb = int(state[F_MB])
    for i in range(mb, 0, -1):
        if not _occupied(params, state, 1.0, i):
            return float(i)
    bottom = 0.0
    for k in range(int(params[P_N])):
        if state[_slot(params, S_SIDE, k)] > 0:
            bottom = max(bottom, state[_slot(params, S_LEVEL, k)])
    cand = bottom + 1.0
    if _level_price(params, state, 1.0, cand) >= params[P_LOW] - 1e-12:
        if cand <= mb:
            return cand
        if _add_known(params, state):
            state[F_MB] = cand
            return cand
    return max(bottom, 1.0)


@kernel_jit
def _clear_slot(params: np.ndarray, state: np.ndarray, k: int) -> None:
    for arr in range(N_SLOT_ARRAYS):
        state[_slot(params, arr, k)] = 0.0


@kernel_jit
def _place_slot(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, k: int) -> int:
    """Send slot ``k``'s order; deferred (pending) while the bot is not running."""
    side = state[_slot(params, S_SIDE, k)]
    if side == 0:
        return n
    if not _running(state):
        if int(state[H.H_STATE]) != C.CLOSING:
            state[_slot(params, S_PENDING, k)] = 1.0
        return n
    state[_slot(params, S_PENDING, k)] = 0.0
    px = _tick(params, _level_price(params, state, side, state[_slot(params, S_LEVEL, k)]))
    qty = _lot(params, state[_slot(params, S_TARGET, k)] - state[_slot(params, S_FILLED, k)])
    if not _meets_min(params, qty, px):
        _clear_slot(params, state, k)
        state[F_SKIPPED] += 1.0
        return n
    n = place_nb(actions, n, 0, side, K.LIMIT, px, qty, SLOT_TAG0 + k, False, False)
    state[_slot(params, S_LIVE, k)] = 1.0
    return n


@kernel_jit
def _set_buy(params: np.ndarray, state: np.ndarray, k: int, level: float, spend: float) -> None:
    _clear_slot(params, state, k)
    px = _tick(params, _level_price(params, state, 1.0, level))
    state[_slot(params, S_SIDE, k)] = 1.0
    state[_slot(params, S_LEVEL, k)] = level
    state[_slot(params, S_SPEND, k)] = spend
    state[_slot(params, S_TARGET, k)] = _lot(params, spend / px)


@kernel_jit
def _set_sell(
    params: np.ndarray, state: np.ndarray, k: int, level: float, qty: float, pair: float, fee: float
) -> None:
    _clear_slot(params, state, k)
    state[_slot(params, S_SIDE, k)] = -1.0
    state[_slot(params, S_LEVEL, k)] = level
    state[_slot(params, S_TARGET, k)] = qty
    state[_slot(params, S_PAIR, k)] = pair
    state[_slot(params, S_OPEN_FEE, k)] = fee


@kernel_jit
def _arm_tp(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """TOTAL_PNL_PERCENT: re-arm the cross-up where quote + base·p − I reaches x%·I."""
    if params[P_TP_TYPE] != TP_PNL or not _running(state):
        return n
    if state[F_TP_LEVEL] > 0.0:
        n = disarm_tag_nb(actions, n, TAG_TP)
        state[F_TP_LEVEL] = 0.0
    inv = params[P_I]
    goal = inv * (1.0 + params[P_TP_VAL])
    base = state[F_BASE]
    if base > 1e-12:
        level = (goal - state[F_QUOTE]) / base
        state[F_TP_LEVEL] = max(level, 1e-12)
        n = arm_cross_nb(actions, n, 0, state[F_TP_LEVEL], True, TAG_TP)
    return n


@kernel_jit
def _pnl_reached(params: np.ndarray, state: np.ndarray) -> bool:
    """With no base left, the PnL is the quote's alone: check it directly."""
    if params[P_TP_TYPE] != TP_PNL or state[F_BASE] > 1e-12:
        return False
    return bool(state[F_QUOTE] - params[P_I] >= params[P_TP_VAL] * params[P_I] - 1e-12)


@kernel_jit
def _send_init(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    state[F_INIT_RETRY] = 0.0
    state[F_INIT_ACTIVE] = 1.0
    state[F_INIT_FILLED] = 0.0
    state[F_INIT_VALUE] = 0.0
    state[F_INIT_FEE] = 0.0
    return place_nb(actions, n, 0, 1.0, K.MARKET, np.nan, state[F_INIT_QTY], TAG_INIT, False, False)


@kernel_jit
def _start(params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray) -> int:
    price = event[K.E_PRICE]
    state[F_E] = price
    state[F_START_T] = event[K.E_TIME]
    state[F_CAP_BAR] = -1.0
    state[F_QUOTE] = params[P_I]
    state[H.H_INVESTMENT] = params[P_I]
    nn = int(params[P_N])
    half = nn // 2
    s = params[P_I] / (nn * (1.0 + max(params[P_MAKER], params[P_TAKER])))
    state[F_S] = s
    mb = 0
    for i in range(1, half + 1):
        if _level_price(params, state, 1.0, i) < params[P_LOW] - 1e-12:
            break
        mb = i
    ms = 0
    high = params[P_HIGH]
    for j in range(1, half + 1):
        if high > 0.0 and _level_price(params, state, -1.0, j) > high + 1e-12:
            break
        ms = j
    q_sell = _lot(params, s / price)
    ok = mb > 0 and ms > 0
    if not ok:
        state[F_SETUP_ERROR] = 2.0
    for i in range(1, mb + 1):
        px = _tick(params, _level_price(params, state, 1.0, i))
        ok = ok and _meets_min(params, _lot(params, s / px), px)
    for j in range(1, ms + 1):
        ok = ok and _meets_min(params, q_sell, _tick(params, _level_price(params, state, -1.0, j)))
    ok = ok and _meets_min(params, _lot(params, q_sell * ms), price)
    if not ok:
        if state[F_SETUP_ERROR] == 0:
            state[F_SETUP_ERROR] = 1.0
        H.transition_nb(state, C.ERROR, SETUP_FAILED)
        return 0
    H.transition_nb(state, C.ACTIVE, C.USER_START)
    state[F_MB] = mb
    state[F_MS] = ms
    state[F_SELL_QTY0] = q_sell
    n = 0
    for i in range(1, mb + 1):
        k = i - 1
        _set_buy(params, state, k, float(i), s)
        n = _place_slot(params, state, actions, n, k)
    for j in range(1, ms + 1):
        k = mb + j - 1
        _set_sell(params, state, k, float(j), q_sell, price, 0.0)
        state[_slot(params, S_WAIT_INIT, k)] = 1.0
    state[F_INIT_QTY] = _lot(params, q_sell * ms)
    n = _send_init(params, state, actions, n)
    if params[P_TP_TYPE] == TP_PRICE:
        state[F_TP_LEVEL] = params[P_TP_VAL]
        n = arm_cross_nb(actions, n, 0, params[P_TP_VAL], True, TAG_TP)
    return n


@kernel_jit
def _init_done(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """The initial market buy is done: its fill price pairs the sells, which go out."""
    state[F_INIT_ACTIVE] = 0.0
    filled = state[F_INIT_FILLED]
    state[F_BASE0] = filled
    b = state[F_INIT_VALUE] / filled if filled > 0 else 0.0
    fee = state[F_INIT_FEE]
    left = filled
    for k in range(int(params[P_N])):
        if state[_slot(params, S_WAIT_INIT, k)] <= 0:
            continue
        state[_slot(params, S_WAIT_INIT, k)] = 0.0
        q = state[_slot(params, S_TARGET, k)]
        if left < q - 1e-12 or filled <= 0:
            _clear_slot(params, state, k)  # the part that was not bought leaves a gap
            continue
        left -= q
        state[_slot(params, S_PAIR, k)] = b
        state[_slot(params, S_OPEN_FEE, k)] = fee * q / filled
        n = _place_slot(params, state, actions, n, k)
    return n


@kernel_jit
def _start_closing(
    params: np.ndarray,
    state: np.ndarray,
    event: np.ndarray,
    actions: np.ndarray,
    n: int,
    trigger: int,
    mode: int,
) -> int:
    if not H.transition_nb(state, C.CLOSING, trigger):
        return n
    for k in range(int(params[P_N])):
        if state[_slot(params, S_LIVE, k)] > 0:
            n = cancel_tag_nb(actions, n, 0, SLOT_TAG0 + k)
            state[_slot(params, S_LIVE, k)] = 0.0
        state[_slot(params, S_PENDING, k)] = 0.0
    if state[F_INIT_ACTIVE] > 0:
        n = cancel_tag_nb(actions, n, 0, TAG_INIT)
        state[F_INIT_ACTIVE] = 0.0
    state[F_INIT_RETRY] = 0.0
    if state[F_TP_LEVEL] > 0:
        n = disarm_tag_nb(actions, n, TAG_TP)
        state[F_TP_LEVEL] = 0.0
    state[F_CLOSE_MODE] = mode
    px = event[K.E_PRICE] if event[K.E_TYPE] == K.EV_TRIGGER else event[K.E_MARK]
    if not px > 0.0:
        px = state[F_LAST_PX]
    if mode == MODE_TO_BASE:
        qty = _lot(params, state[F_QUOTE] / (px * (1.0 + params[P_TAKER])))
        if _meets_min(params, qty, px):
            state[F_CLOSE_ACTIVE] = 1.0
            return place_nb(actions, n, 0, 1.0, K.MARKET, np.nan, qty, TAG_CLOSE, False, False)
    elif mode == MODE_TO_QUOTE:
        qty = _lot(params, state[F_BASE])
        if _meets_min(params, qty, px):
            state[F_CLOSE_ACTIVE] = 1.0
            return place_nb(actions, n, 0, -1.0, K.MARKET, np.nan, qty, TAG_CLOSE, False, False)
    state[F_CLOSE_ACTIVE] = 0.0
    H.finish_closing_nb(state)
    return n


@kernel_jit
def _exit_mode(params: np.ndarray) -> int:
    e = int(params[P_EXIT])
    if e == EXIT_BASE:
        return MODE_TO_BASE
    if e == EXIT_QUOTE:
        return MODE_TO_QUOTE
    return MODE_CANCEL


@kernel_jit
def _complete_slot(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int, k: int
) -> int:
    side = state[_slot(params, S_SIDE, k)]
    filled = state[_slot(params, S_FILLED, k)]
    value = state[_slot(params, S_VALUE, k)]
    fee = state[_slot(params, S_FEE, k)]
    if filled <= 0.0:
        _clear_slot(params, state, k)
        return n
    if side > 0:
        state[F_BUY_FILLS] += 1.0
        b = value / filled
        _clear_slot(params, state, k)  # frees the buy level before the sell is chosen
        level = _sell_level(params, state)
        _set_sell(params, state, k, level, filled, b, fee)
    else:
        state[F_SELL_FILLS] += 1.0
        pair = state[_slot(params, S_PAIR, k)]
        target = state[_slot(params, S_TARGET, k)]
        open_fee = state[_slot(params, S_OPEN_FEE, k)] * min(1.0, filled / target)
        profit = value - filled * pair - open_fee - fee
        state[H.H_REALIZED] += profit
        state[H.H_CYCLES] += 1.0
        if profit > 0.0:
            state[F_WINS] += 1.0
        extra = params[P_REINV] * max(profit, 0.0)
        state[F_REINVESTED] += extra
        spend = filled * pair + extra
        _clear_slot(params, state, k)
        level = _buy_level(params, state)
        _set_buy(params, state, k, level, spend)
    return _place_slot(params, state, actions, n, k)


@kernel_jit
def _funds_pause(state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int) -> int:
    return funds_pause_nb(
        state,
        F_FUNDS_EPISODE,
        F_FUNDS_RESUMED_T,
        _running(state),
        event[K.E_TIME],
        actions,
        n,
        new_episode_poll_tag_nb(state, F_FUNDS_EPISODE, TAG_POLL),
    )


@kernel_jit
def _funds_there(params: np.ndarray, state: np.ndarray, event: np.ndarray) -> bool:
    """Do the free quote and the base not held by live sells cover the deferred orders?"""
    quote = 0.0
    base = 0.0
    held = 0.0
    for k in range(int(params[P_N])):
        side = state[_slot(params, S_SIDE, k)]
        left = state[_slot(params, S_TARGET, k)] - state[_slot(params, S_FILLED, k)]
        if state[_slot(params, S_PENDING, k)] > 0:
            if side > 0:
                level = state[_slot(params, S_LEVEL, k)]
                px = _tick(params, _level_price(params, state, 1.0, level))
                quote += left * px * (1.0 + params[P_MAKER])
            elif side < 0:
                base += left
        elif state[_slot(params, S_LIVE, k)] > 0 and side < 0:
            held += left
    if state[F_INIT_RETRY] > 0:
        quote += state[F_INIT_QTY] * state[F_LAST_PX] * (1.0 + params[P_TAKER])
    return bool(event[K.E_FREE] >= quote - 1e-9 and state[F_POS] - held >= base - 1e-12)


@kernel_jit
def _resume(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, why: int) -> int:
    if not H.transition_nb(state, int(state[H.H_RESUME_TO]), why):
        return n
    state[F_FUNDS_EPISODE] = 0.0
    if state[F_INIT_RETRY] > 0:
        n = _send_init(params, state, actions, n)
    for k in range(int(params[P_N])):
        if state[_slot(params, S_PENDING, k)] > 0:
            n = _place_slot(params, state, actions, n, k)
    return _arm_tp(params, state, actions, n)


@kernel_jit
def _book_fill(state: np.ndarray, event: np.ndarray) -> None:
    qty = event[K.E_QTY]
    px = event[K.E_PRICE]
    fee = event[K.E_FEE]
    if event[K.E_SIDE] > 0:
        state[F_BASE] += qty
        state[F_QUOTE] -= qty * px + fee
    else:
        state[F_BASE] -= qty
        state[F_QUOTE] += qty * px - fee
    state[H.H_FEES] += fee
    state[F_FILLS] += 1.0


@kernel_jit
def _after_fill(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    if not _running(state):
        return n
    if _pnl_reached(params, state):
        return _start_closing(
            params, state, event, actions, n, C.TAKE_PROFIT_HIT, _exit_mode(params)
        )
    return _arm_tp(params, state, actions, n)


@kernel_jit
def _on_fill(params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray) -> int:
    _book_fill(state, event)
    tag = event[K.E_TAG]
    done = event[K.E_REMAINING] <= 0.0
    qty = event[K.E_QTY]
    n = 0
    if tag == TAG_INIT:
        state[F_INIT_FILLED] += qty
        state[F_INIT_VALUE] += qty * event[K.E_PRICE]
        state[F_INIT_FEE] += event[K.E_FEE]
        if done and state[F_INIT_ACTIVE] > 0:
            n = _init_done(params, state, actions, n)
        return _after_fill(params, state, event, actions, n)
    if tag == TAG_CLOSE:
        if done and int(state[H.H_STATE]) == C.CLOSING:
            state[F_CLOSE_ACTIVE] = 0.0
            H.finish_closing_nb(state)
        return n
    k = int(tag - SLOT_TAG0 + 0.5)
    if tag < SLOT_TAG0 or k >= int(params[P_N]):
        return n
    state[_slot(params, S_FILLED, k)] += qty
    state[_slot(params, S_VALUE, k)] += qty * event[K.E_PRICE]
    state[_slot(params, S_FEE, k)] += event[K.E_FEE]
    if done and int(state[H.H_STATE]) != C.CLOSING:
        state[_slot(params, S_LIVE, k)] = 0.0
        n = _complete_slot(params, state, event, actions, n, k)
    return _after_fill(params, state, event, actions, n)


@kernel_jit
def _on_cancel(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray
) -> int:
    tag = event[K.E_TAG]
    reason = int(event[K.E_CODE])
    funds = reason == K.R_INSUFFICIENT_FUNDS and event[K.E_QTY] <= 0.0
    n = 0
    if tag == TAG_INIT:
        if state[F_INIT_ACTIVE] > 0:
            if funds:
                state[F_INIT_ACTIVE] = 0.0
                state[F_INIT_RETRY] = 1.0
                return _funds_pause(state, event, actions, n)
            n = _init_done(params, state, actions, n)
        return n
    if tag == TAG_CLOSE:
        if int(state[H.H_STATE]) == C.CLOSING:
            state[F_CLOSE_ACTIVE] = 0.0
            H.finish_closing_nb(state)  # what could not be closed stays as dust
        return n
    k = int(tag - SLOT_TAG0 + 0.5)
    if tag < SLOT_TAG0 or k >= int(params[P_N]) or state[_slot(params, S_LIVE, k)] <= 0:
        return n  # the bot's own cancel
    state[_slot(params, S_LIVE, k)] = 0.0
    if funds:
        state[_slot(params, S_PENDING, k)] = 1.0
        return _funds_pause(state, event, actions, n)
    if reason == K.R_MIN_SIZE:
        state[F_SKIPPED] += 1.0
    else:
        state[F_EXT_CANCELS] += 1.0
    if state[_slot(params, S_FILLED, k)] > 0.0:
        return _complete_slot(params, state, event, actions, n, k)
    _clear_slot(params, state, k)  # a gap
    return n


@kernel_jit
def _on_signal(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray
) -> int:
    code = int(event[K.E_CODE])
    if code == C.CMD_CLOSE:
        return _start_closing(params, state, event, actions, 0, C.CLOSE_SIGNAL, _exit_mode(params))
    if code == C.CMD_STOP:
        return _start_closing(params, state, event, actions, 0, C.USER_STOP, _exit_mode(params))
    closer = forced_close_trigger_nb(code)
    if closer >= 0:
        return _start_closing(params, state, event, actions, 0, closer, MODE_TO_QUOTE)
    if code == C.CMD_PAUSE and _running(state):
        H.transition_nb(state, C.PAUSED, C.USER_PAUSE)
        return 0
    if code == C.CMD_RESUME and int(state[H.H_STATE]) == C.PAUSED:
        return _resume(params, state, actions, 0, C.USER_RESUME)
    if code == C.CMD_ADD_FUNDS:
        state[F_AF_REJECTED] += 1.0  # 409: a Loop cannot take more funds
        return 0
    state[F_IGNORED] += 1.0
    return 0


@kernel_jit
def _on_timer(params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray) -> int:
    """A balance poll of the current funds episode (those of earlier ones carry other tags)."""
    tag_poll = episode_poll_tag_nb(state, F_FUNDS_EPISODE, TAG_POLL)
    if not is_funds_poll_nb(state, F_FUNDS_EPISODE, event, tag_poll):
        return 0
    there = _funds_there(params, state, event)
    outcome = funds_poll_nb(state, F_FUNDS_EPISODE, F_FUNDS_RESUMED_T, event, tag_poll, there)
    if outcome == POLL_RESUME:
        return _resume(params, state, actions, 0, C.FUNDS_AVAILABLE)
    if outcome == POLL_WAIT:
        return funds_arm_owed_nb(state, F_FUNDS_EPISODE, event, tag_poll, actions, 0)
    return 0


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def loop_on_event_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
    et = int(event[K.E_TYPE])
    state[H.H_BAR] = event[K.E_BAR]
    if event[K.E_TIME] > 0.0:  # (the end-of-run stop event carries no time)
        state[H.H_TIME] = event[K.E_TIME]
        state[F_LAST_T] = event[K.E_TIME]
    if event[K.E_MARK] > 0.0:
        state[F_LAST_PX] = event[K.E_MARK]
    if et != K.EV_STOP and event[K.E_INST] >= 0.0:
        state[F_POS] = event[K.E_POS_QTY]
    s = int(state[H.H_STATE])
    if s == C.STOPPED or s == C.COMPLETED:
        return 0
    if et == K.EV_START:
        if s != C.INITIALIZING:
            return 0
        return _start(params, state, event, actions)
    if s == C.INITIALIZING or s == C.ERROR:
        return 0
    if et == K.EV_FILL:
        return _on_fill(params, state, event, actions)
    if et == K.EV_CANCEL:
        return _on_cancel(params, state, event, actions)
    if et == K.EV_TRIGGER:
        if event[K.E_TAG] == TAG_TP and state[F_TP_LEVEL] > 0:
            state[F_TP_LEVEL] = 0.0
            return _start_closing(
                params, state, event, actions, 0, C.TAKE_PROFIT_HIT, _exit_mode(params)
            )
        return 0
    if et == K.EV_TIMER:
        return _on_timer(params, state, event, actions)
    if et == K.EV_SIGNAL:
        return _on_signal(params, state, event, actions)
    return 0


# ------------------------------------------------------------------------- the strategy

COMMAND_CODES = {
    "CLOSE": C.CMD_CLOSE,
    "STOP": C.CMD_STOP,
    "PAUSE": C.CMD_PAUSE,
    "RESUME": C.CMD_RESUME,
    "KILL": C.CMD_KILL,
    "ADD_FUNDS": C.CMD_ADD_FUNDS,
}


class Loop(BotStrategy):
    """Loop (see the module docstring for the behaviour and the choices made)."""

    name = "loop"
    Config: ClassVar[type[LoopConfig]] = LoopConfig
    kernel = loop_on_event_nb

    def __init__(self, config: LoopConfig | None = None, **fields: Any) -> None:
        super().__init__()
        self.config = config if config is not None else LoopConfig.parse(fields)
        self.instrument: Instrument | None = None
        self._params: np.ndarray | None = None
        self._warned = False

    def check(self, instruments: dict[str, Instrument]) -> None:
        inst = next(iter(instruments.values()))
        if inst.is_margin:
            raise ConfigError(
                "instrument", f"Loop trades spot; {inst.symbol} is a margin instrument"
            )
        self.instrument = inst
        self._params = None

    @property
    def params(self) -> np.ndarray:
        if self._params is not None:
            return self._params
        c = self.config
        inst = self.instrument
        tp_type = {None: TP_NONE, "TOTAL_PNL_PERCENT": TP_PNL, "PRICE_TARGET": TP_PRICE}[
            c.take_profit_type
        ]
        tp_val = 0.0
        if tp_type == TP_PNL:
            tp_val = (c.take_profit_pct or 0.0) / 100.0
        elif tp_type == TP_PRICE:
            tp_val = c.take_profit_price or 0.0
        p = np.zeros(N_PARAMS)
        p[P_I] = c.investment
        p[P_LOW] = c.low_price
        p[P_HIGH] = c.high_price if c.high_price is not None else -1.0
        p[P_D] = c.order_distance / 100.0
        p[P_N] = c.order_count
        p[P_REINV] = c.reinvest_profit_pct / 100.0 if c.reinvest_profit else 0.0
        p[P_TP_TYPE] = tp_type
        p[P_TP_VAL] = tp_val
        p[P_EXIT] = {"BOTH": EXIT_BOTH, "BASE": EXIT_BASE, "QUOTE": EXIT_QUOTE}[c.exit_currency]
        p[P_MAXK] = c.max_known_levels
        if inst is not None:
            p[P_TICK] = inst.tick
            p[P_TICK_DEC] = _decimals(inst.tick)
            p[P_LOT] = inst.lot
            p[P_LOT_DEC] = _decimals(inst.lot)
            p[P_MIN_QTY] = inst.min_qty
            p[P_MIN_NOTIONAL] = inst.min_notional
            p[P_MAKER] = inst.maker_fee
            p[P_TAKER] = inst.taker_fee
        else:
            p[P_TICK_DEC] = p[P_LOT_DEC] = 12
        self._params = p
        return p

    def initial_state(self, data: MarketData) -> np.ndarray:
        state = H.new_state(state_size(self.config.order_count))
        state[F_DATA_END] = float(data.bar_time_ms(-1)) if data.n_bars else 0.0
        return state

    def signals(self, data: MarketData) -> np.ndarray | None:
        commands = self.config.commands
        if not commands:
            return None
        out = np.zeros(data.n_bars, dtype=np.int64)
        for bar, code in commands.items():
            if bar < data.n_bars:
                out[bar] = COMMAND_CODES[code] if isinstance(code, str) else int(code)
        return out

    # --------------------------------------------------------------- reading the state
    def slots(self) -> dict[str, np.ndarray]:
        n = self.config.order_count
        names = (
            "side",
            "level",
            "target",
            "filled",
            "value",
            "fee",
            "pair",
            "open_fee",
            "live",
            "pending",
            "wait_init",
            "spend",
        )
        return {
            name: self.state[A_SLOTS + arr * n : A_SLOTS + (arr + 1) * n].copy()
            for arr, name in enumerate(names)
        }

    def metrics(self) -> dict[str, Any]:
        if not self.state.size:
            return {}
        s = self.state
        out = self.bot_metrics()
        price = float(s[F_LAST_PX])
        base = float(s[F_BASE])
        quote = float(s[F_QUOTE])
        inv = float(s[H.H_INVESTMENT]) or self.config.investment
        slots = self.slots()
        active = slots["side"] != 0
        end = max(float(s[F_LAST_T]), float(s[F_DATA_END]))
        days = max((end - s[F_START_T]) / 86_400_000.0, 1.0 / 1440.0)
        cycles = int(s[H.H_CYCLES])
        value = quote + base * price
        capped = int(s[F_CAPPED])
        if capped and not self._warned:
            self._warned = True
            logger.warning(
                "loop: %d known levels reached at bar %d; no more levels are added",
                self.config.max_known_levels,
                int(s[F_CAP_BAR]),
            )
        out.update(
            {
                "entry_price": float(s[F_E]),
                "slice": float(s[F_S]),
                "bot_profit": float(s[H.H_REALIZED]),
                "reinvested": float(s[F_REINVESTED]),
                "base_balance": base,
                "quote_balance": quote,
                "base_growth": base - float(s[F_BASE0]),
                "position_value": value,
                "position_value_vs_investment_pct": (value / inv - 1.0) * 100.0,
                "total_pnl": value - inv,
                "cycles": cycles,
                "profit_per_cycle": float(s[H.H_REALIZED]) / cycles if cycles else 0.0,
                "win_rate": float(s[F_WINS]) / cycles if cycles else 0.0,
                "fills": int(s[F_FILLS]),
                "fill_frequency_per_day": float(s[F_FILLS]) / days,
                "active_buys": int((active & (slots["side"] > 0)).sum()),
                "active_sells": int((active & (slots["side"] < 0)).sum()),
                "known_levels": int(s[F_MB] + s[F_MS]),
                "known_buy_levels": int(s[F_MB]),
                "known_sell_levels": int(s[F_MS]),
                "known_levels_capped": capped > 0,
                "take_profit_level": float(s[F_TP_LEVEL]),
                "skipped_min": int(s[F_SKIPPED]),
                "external_cancels": int(s[F_EXT_CANCELS]),
                "ignored_signals": int(s[F_IGNORED]),
                "add_funds_rejected": int(s[F_AF_REJECTED]),
                "funds_pauses": int(s[F_FUNDS_PAUSES]),
                "setup_failed": bool(s[F_SETUP_ERROR] > 0),
            }
        )
        if s[F_FUNDS_WARN] > 0:
            logger.warning("loop: still paused for funds after the last balance poll")
        return out
