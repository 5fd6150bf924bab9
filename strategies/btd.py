"""BTD, "buy the dip": a spot grid whose investment and profit are in base (STRATEGIES.md §3.4).

Layout (at start, price P). Geometric levels, either a range (``low_price``/``high_price`` with
exactly one of ``grid_step``/``grid_levels``) or a count anchored at P (``p_0 = P/(1+s)^down``,
N = down+up+1; ``grid_step`` required; ``levels_down``/``levels_up``, or ``grid_levels`` split by
``levels_distribution``). Each of the N−1 cells holds ``Q = floor_lot(B/(N−1))`` base.

1. The cells below P (k < e, e = the level nearest P) sell their Q in one taker sale; each gets
   ``U = Q·fill(1−f_t)`` quote and places ``BUY floor_lot(U/(tick(p_k)(1+f_m)))@p_k``.
2. The cells above P place ``SELL Q@p_{k+1}``.

Events: a sell fill turns the cell's proceeds ``U`` into a buy at p_k; a buy fill of b base
books the exact base delta ``b−Q`` as profit, and the cell sells Q again (the surplus stays free
in the bot). Trailing (down only): when the bottom buy fills and no buy is left, the top sell is
cancelled, its Q is sold at market, and the proceeds buy at ``p_0/(1+s)``; the grid moves down
one level and the stop loss with it. SL: a cross-up at ``tick(top·(1+x))`` → CLOSE_TO_BASE →
STOPPED. TP: realised base profit ≥ x%·B → CLOSE_TO_BASE → COMPLETED.

Choices where the spec is silent (TradeTower's, a trader's reading):

- **Starting base.** The investment B is base the account already holds: run a backtest with
  ``holdings={symbol: B}`` (the engine's starting base, valued at the first close). The bot's
  books start with B base and no quote; it never touches base or quote beyond its own.
- **Prices in sizing.** Buy quantities use the ticked order price,
  ``floor_lot(U/(tick(p)(1+f_m)))``, so the order's reservation always fits in U (B2's
  1.0977@90.91 needs it); a buy that is marketable when placed (a gap down) uses f_t, the rate
  it pays. What U cannot buy is quote dust, kept by the bot and reported (``dust_quote``).
- **SL level.** Armed at the ticked level, so a price that prints exactly tick(top·(1+x)) fires it.
- **TP** reads "base profit" as the realised base profit (the sum of the cycle deltas), checked
  after every buy fill.
- **Realised PnL after a base close.** When CLOSE_TO_BASE completes, everything is realised in base:
  ``realized_pnl = base held − B``; the quote the last buy could not use is reported as dust.
  The closing buy is sized at the trigger price; if the next open is higher, the venue fills what
  the quote affords and cancels the rest (that too ends the closing).
- **Commands** (signals): CLOSE → CLOSE_TO_BASE, STOP → CANCEL_ORDERS (the user-stop default), KILL
  → CLOSE_TO_QUOTE, all → STOPPED. PAUSE keeps resting orders working and books their fills, but
  places no new order (counter-orders, trailing) until RESUME. ADD_FUNDS adds base (``add_funds``
  gives the amount by bar), accepted only while ACTIVE with no market order in flight.
- **Add funds.** ``Q' = floor_lot(Q·B'/B)`` per cell; sell cells re-place with Q'; the buy cells'
  extra base is sold in one taker sale and shared out to their U; the profit reference becomes Q'.
- **Insufficient funds** (a cell order rejected for funds): PAUSED, with balance polls at
  0/15/30/60/120/300 s; the first poll that finds the quote and base needed resumes and re-places
  the deferred orders; after the last one it stays paused until a user RESUME. A poll carries no
  position: the base is the position the venue last reported, less what resting sells hold.
  Each episode polls on timer tags of its own, so polls left from an earlier one are ignored.
- **Minimums.** An order below the instrument's minimums is not sent; its cell goes IDLE (counted in
  ``skipped_min``). If an initial order would be below them, setup fails: the bot goes to ERROR
  and places nothing. Levels beyond N=100 are refused.
- **Partial fills** are booked as they come; a cell moves on after its order's full fill. A cancel
  of a partially filled cell order by the bot (trailing, add funds) keeps the filled part in the
  cell, and the re-placed order covers only the rest. An external cancel leaves the cell IDLE; a
  filled part there completes the cell with what was filled.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar, Literal

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

MAX_LEVELS = 100
SETUP_FAILED = C.TRIGGER_CODE[Trigger.SETUP_FAILED]

# ---------------------------------------------------------------- params (float64 vector)
P_MODE = 0  # 0 range, 1 count
P_N = 1  # levels N
P_B = 2  # investment (base)
P_S = 3  # step s (fraction)
P_DOWN = 4
P_UP = 5
P_TRAIL = 6
P_SL = 7  # fraction, < 0 off
P_TP = 8  # fraction, < 0 off
P_TICK = 9
P_TICK_DEC = 10
P_LOT = 11
P_LOT_DEC = 12
P_MIN_QTY = 13
P_MIN_NOTIONAL = 14
P_MAKER = 15
P_TAKER = 16
P_N_AF = 17  # add-funds schedule entries
P_LEVELS = 20  # range mode: N levels; then the schedule (bar, amount) pairs

# ------------------------------------------------------------------------- state fields
B0 = H.BOT_START
F_P = B0 + 0  # price at layout
F_E = B0 + 1  # empty level at layout
F_Q = B0 + 2  # nominal base per cell
F_SHIFTS = B0 + 3
F_OFFSET = B0 + 4  # shifts so far: cell k carries tag CELL_TAG0 + k − offset
F_BASE = B0 + 5  # the bot's base
F_QUOTE = B0 + 6  # the bot's quote
F_SL = B0 + 7  # armed SL level (0 = none)
F_START_T = B0 + 8
F_LAST_T = B0 + 9
F_LAST_PX = B0 + 10
F_WINS = B0 + 11
F_INIT_ACTIVE = B0 + 12  # the initial sale is in flight
F_INIT_FILLED = B0 + 13
F_INIT_VALUE = B0 + 14  # proceeds so far (net of fees)
F_INIT_RETRY = B0 + 15  # the initial sale was refused for funds: re-send on resume
F_INIT_QTY = B0 + 16
F_TRAIL_ACTIVE = B0 + 17  # the trailing sale is in flight
F_TRAIL_QTY = B0 + 18
F_TRAIL_FILLED = B0 + 19
F_TRAIL_VALUE = B0 + 20
F_CLOSE_ACTIVE = B0 + 21  # the closing market order is in flight
F_CLOSE_MODE = B0 + 22  # 0 cancel orders, 1 to base, 2 to quote
F_AF_ACTIVE = B0 + 23  # the add-funds sale is in flight
F_AF_QTY = B0 + 24
F_AF_FILLED = B0 + 25
F_AF_VALUE = B0 + 26
F_GRID_PROFIT = B0 + 27  # Σ (b − Q) over buy fills
F_EXT_CANCELS = B0 + 28
F_SKIPPED = B0 + 29
F_IGNORED = B0 + 30  # signals ignored
F_ADDED = B0 + 31  # add-funds accepted
F_AF_REFUSED = B0 + 32
F_FUNDS_EPISODE = B0 + 33  # 1 while paused for funds
F_FUNDS_PAUSES = F_FUNDS_EPISODE + FD_PAUSES  # the shared funds helper's layout
F_FUNDS_WARN = F_FUNDS_EPISODE + FD_WARN  # the last poll failed
F_BASE0 = B0 + 36  # the investment at start
F_BUY_FILLS = B0 + 37
F_SELL_FILLS = B0 + 38
F_CLOSE_PNL_SET = B0 + 39
F_SETUP_ERROR = B0 + 40  # 1 minimums, 2 no level
F_FUNDS_RESUMED_T = B0 + 41  # time of the last resume by a poll
F_DATA_END = B0 + 42  # time of the data's last bar (daily figures)
F_POS = B0 + 43  # the position the venue last reported (a poll reports none)
N_SCALARS = 48
A_LEV = B0 + N_SCALARS  # N levels, then per-cell arrays of N each
# per-cell arrays (index j)
C_STATE = 0
C_Q = 1  # base the cell holds / owes back
C_U = 2  # quote of a buy cell
C_TARGET = 3  # the current phase's order target (base)
C_FILLED = 4
C_VALUE = 5  # Σ qty·price of the phase's fills
C_FEE = 6
C_LIVE = 7  # an order rests for it
C_PENDING = 8  # an order is owed (paused, or refused for funds)
C_EXTRA = 9  # add funds: extra base of a buy cell, sold at market
C_CXL = 10  # the bot's own cancels still to be reported (a re-placed cell shares its tag)
N_CELL_ARRAYS = 11

IDLE = 0
BUY_WAIT = 1
SELL_WAIT = 2

CELL_TAG0 = 1_000_000.0
TAG_INIT = 1.0
TAG_TRAIL = 2.0
TAG_CLOSE = 3.0
TAG_AF = 4.0
TAG_SL = 10.0
TAG_POLL = 20.0  # funds episode e (from 0) polls on TAG_POLL + 6e + j, j = 0…5

MODE_CANCEL = 0
MODE_TO_BASE = 1
MODE_TO_QUOTE = 2


def state_size(n_levels: int) -> int:
    return N_SCALARS + n_levels + N_CELL_ARRAYS * n_levels


# ------------------------------------------------------------------------------- config


class BtdConfig(FrozenConfig):
    """BTD parameters (STRATEGIES.md §3.4); camelCase aliases accepted."""

    investment: float = Field(gt=0)
    """B, in base: what the bot trades with and measures its profit in."""
    low_price: float | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("low_price", "lowPrice")
    )
    """Range mode: the lowest level (quote)."""
    high_price: float | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("high_price", "highPrice")
    )
    """Range mode: the highest level (quote)."""
    levels_down: int | None = Field(
        default=None,
        ge=0,
        le=MAX_LEVELS,
        validation_alias=AliasChoices("levels_down", "levelsDown"),
    )
    """Count mode: levels below the start price."""
    levels_up: int | None = Field(
        default=None, ge=0, le=MAX_LEVELS, validation_alias=AliasChoices("levels_up", "levelsUp")
    )
    """Count mode: levels above the start price."""
    grid_step: float | None = Field(
        default=None, ge=0.1, le=100, validation_alias=AliasChoices("grid_step", "gridStep")
    )
    """s in % between neighbouring levels (required in count mode)."""
    grid_levels: int | None = Field(
        default=None, ge=5, le=100, validation_alias=AliasChoices("grid_levels", "gridLevels")
    )
    """N levels (range mode, or count mode split by levels_distribution)."""
    levels_distribution: float = Field(
        default=50.0,
        ge=0,
        le=100,
        validation_alias=AliasChoices("levels_distribution", "levelsDistribution"),
    )
    """Count mode without counts: the share (%) of the N−1 steps below the start price."""
    trailing: bool = True
    """Trailing down: the top sell moves below the grid as a buy when the bottom buy fills."""
    stop_loss_enabled: bool = Field(
        default=False, validation_alias=AliasChoices("stop_loss_enabled", "stopLossEnabled")
    )
    """Whether ``stop_loss_pct`` is in force (off by default)."""
    stop_loss_pct: float = Field(
        default=3.0, ge=0, le=100, validation_alias=AliasChoices("stop_loss_pct", "stopLossPct")
    )
    """SL = top level·(1+x%), a cross-up; closes to base → STOPPED."""
    take_profit_enabled: bool = Field(
        default=False, validation_alias=AliasChoices("take_profit_enabled", "takeProfitEnabled")
    )
    """Whether ``take_profit_pct`` is in force (off by default)."""
    take_profit_pct: float | None = Field(
        default=None,
        ge=0.1,
        le=1000,
        validation_alias=AliasChoices("take_profit_pct", "takeProfitPct"),
    )
    """TP when the realised base profit ≥ x%·B; closes to base → COMPLETED."""
    commands: dict[int, int | Literal["CLOSE", "STOP", "PAUSE", "RESUME", "KILL"]] = Field(
        default_factory=dict
    )
    """Backtests: commands by bar index, delivered as signals at the bar's close."""
    add_funds: dict[int, float] = Field(
        default_factory=dict, validation_alias=AliasChoices("add_funds", "addFunds")
    )
    """Backtests: base added at a bar (an ADD_FUNDS command carrying that amount)."""

    @model_validator(mode="after")
    def _rules(self) -> BtdConfig:
        range_mode = self.low_price is not None or self.high_price is not None
        count_mode = self.levels_down is not None or self.levels_up is not None
        if range_mode:
            if self.low_price is None:
                raise ValueError("low_price: required with high_price (range mode)")
            if self.high_price is None:
                raise ValueError("high_price: required with low_price (range mode)")
            if self.low_price >= self.high_price:
                raise ValueError(
                    f"low_price ({self.low_price}) must be below high_price ({self.high_price})"
                )
            if count_mode:
                raise ValueError(
                    "levels_down: count mode (levels_down/levels_up) excludes a price range"
                )
            if (self.grid_step is None) == (self.grid_levels is None):
                raise ValueError("grid_step: give exactly one of grid_step and grid_levels")
        else:
            if self.grid_step is None:
                raise ValueError("grid_step: required in count mode (no low_price/high_price)")
            if count_mode:
                if (self.levels_down or 0) + (self.levels_up or 0) == 0:
                    raise ValueError("levels_down: levels_down and levels_up cannot both be 0")
            elif self.grid_levels is None:
                raise ValueError(
                    "levels_down: give levels_down/levels_up, grid_levels, or a price range"
                )
        n = self.n_levels()
        if n < 2 or n > MAX_LEVELS:
            field = "grid_step" if self.grid_step is not None else "grid_levels"
            raise ValueError(f"{field}: gives {n} levels; must be 2 to {MAX_LEVELS}")
        if self.take_profit_enabled and self.take_profit_pct is None:
            raise ValueError("take_profit_pct: required when take_profit_enabled")
        for bar, amount in self.add_funds.items():
            if not amount > 0 or bar < 0:
                raise ValueError(f"add_funds: bar {bar} must be ≥ 0 and amount {amount} > 0")
        for bar in self.commands:
            if bar < 0:
                raise ValueError(f"commands: bar {bar} must be ≥ 0")
        return self

    def counts(self) -> tuple[int, int]:
        """Count mode: (levels below P, levels above P)."""
        if self.levels_down is not None or self.levels_up is not None:
            return self.levels_down or 0, self.levels_up or 0
        steps = (self.grid_levels or 2) - 1
        down = math.floor(steps * self.levels_distribution / 100.0 + 0.5)
        return down, steps - down

    def n_levels(self) -> int:
        if self.low_price is not None and self.high_price is not None:
            if self.grid_levels is not None:
                return self.grid_levels
            s = (self.grid_step or 1.0) / 100.0
            ratio = math.log(self.high_price / self.low_price) / math.log1p(s)
            return math.floor(ratio + 1e-12) + 1
        down, up = self.counts()
        return down + up + 1


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
def _n(params: np.ndarray) -> int:
    return int(params[P_N])


@kernel_jit
def _cell(params: np.ndarray, arr: int, k: int) -> int:
    """State index of cell ``k`` in per-cell array ``arr``."""
    n = _n(params)
    return A_LEV + n + arr * n + k


@kernel_jit
def _tag(state: np.ndarray, k: int) -> float:
    return float(CELL_TAG0 + k - state[F_OFFSET])


@kernel_jit
def _running(state: np.ndarray) -> bool:
    s = int(state[H.H_STATE])
    return s == C.ACTIVE or s == C.TRAILING


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


@kernel_jit
def _committed_base(params: np.ndarray, state: np.ndarray, skip: int) -> float:
    """Base owed to resting or deferred sells (and market sales in flight)."""
    total = 0.0
    for k in range(_n(params) - 1):
        if k != skip and state[_cell(params, C_STATE, k)] == SELL_WAIT:
            total += state[_cell(params, C_TARGET, k)] - state[_cell(params, C_FILLED, k)]
    if state[F_TRAIL_ACTIVE] > 0:
        total += state[F_TRAIL_QTY] - state[F_TRAIL_FILLED]
    if state[F_AF_ACTIVE] > 0:
        total += state[F_AF_QTY] - state[F_AF_FILLED]
    return total


@kernel_jit
def _reset_phase(params: np.ndarray, state: np.ndarray, k: int) -> None:
    state[_cell(params, C_TARGET, k)] = 0.0
    state[_cell(params, C_FILLED, k)] = 0.0
    state[_cell(params, C_VALUE, k)] = 0.0
    state[_cell(params, C_FEE, k)] = 0.0


@kernel_jit
def _place_cell(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, k: int) -> int:
    """Send the order cell ``k`` owes; deferred (pending) while the bot is not running."""
    cs = state[_cell(params, C_STATE, k)]
    if cs == IDLE:
        return n
    if not _running(state):
        if int(state[H.H_STATE]) != C.CLOSING:
            state[_cell(params, C_PENDING, k)] = 1.0
        return n
    filled = state[_cell(params, C_FILLED, k)]
    if cs == BUY_WAIT:
        side = 1.0
        px = _tick(params, state[A_LEV + k])
        left = (
            state[_cell(params, C_U, k)]
            - state[_cell(params, C_VALUE, k)]
            - state[_cell(params, C_FEE, k)]
        )
        # A buy at or above the market takes liquidity: the venue reserves the taker rate.
        rate = params[P_TAKER] if px >= state[F_LAST_PX] > 0.0 else params[P_MAKER]
        qty = _lot(params, left / (px * (1.0 + rate)))
        state[_cell(params, C_TARGET, k)] = filled + qty
    else:
        side = -1.0
        px = _tick(params, state[A_LEV + k + 1])
        qty = _lot(params, state[_cell(params, C_TARGET, k)] - filled)
    state[_cell(params, C_PENDING, k)] = 0.0
    if not _meets_min(params, qty, px):
        state[_cell(params, C_STATE, k)] = IDLE
        state[_cell(params, C_LIVE, k)] = 0.0
        state[F_SKIPPED] += 1.0
        return n
    n = place_nb(actions, n, 0, side, K.LIMIT, px, qty, _tag(state, k), False, False)
    state[_cell(params, C_LIVE, k)] = 1.0
    return n


@kernel_jit
def _cancel_cell(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int, k: int) -> int:
    if state[_cell(params, C_LIVE, k)] > 0:
        n = cancel_tag_nb(actions, n, 0, _tag(state, k))
        state[_cell(params, C_LIVE, k)] = 0.0
        state[_cell(params, C_CXL, k)] += 1.0
    return n


@kernel_jit
def _arm_sl(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    if params[P_SL] < 0.0:
        return n
    if state[F_SL] > 0.0:
        n = disarm_tag_nb(actions, n, TAG_SL)
    top = state[A_LEV + _n(params) - 1]
    level = _tick(params, top * (1.0 + params[P_SL]))
    state[F_SL] = level
    return arm_cross_nb(actions, n, 0, level, True, TAG_SL)


@kernel_jit
def _send_init_sale(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    state[F_INIT_RETRY] = 0.0
    state[F_INIT_ACTIVE] = 1.0
    state[F_INIT_FILLED] = 0.0
    state[F_INIT_VALUE] = 0.0
    return place_nb(
        actions, n, 0, -1.0, K.MARKET, np.nan, state[F_INIT_QTY], TAG_INIT, False, False
    )


@kernel_jit
def _flush(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Send every deferred order (after a resume)."""
    if state[F_INIT_RETRY] > 0:
        n = _send_init_sale(params, state, actions, n)
    for k in range(_n(params) - 1):
        if state[_cell(params, C_PENDING, k)] > 0:
            n = _place_cell(params, state, actions, n, k)
    return n


@kernel_jit
def _start(params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray) -> int:
    nl = _n(params)
    price = event[K.E_PRICE]
    state[F_P] = price
    state[F_START_T] = event[K.E_TIME]
    s = params[P_S]
    if params[P_MODE] > 0:
        p0 = price / (1.0 + s) ** params[P_DOWN]
        for i in range(nl):
            state[A_LEV + i] = p0 * (1.0 + s) ** i
        e = int(params[P_DOWN])
    else:
        e = 0
        for i in range(nl):
            state[A_LEV + i] = params[P_LEVELS + i]
            if abs(state[A_LEV + i] - price) < abs(state[A_LEV + e] - price) - 1e-12:
                e = i
    state[F_E] = e
    b = params[P_B]
    q = _lot(params, b / (nl - 1))
    state[F_Q] = q
    state[F_BASE] = b
    state[F_BASE0] = b
    state[H.H_INVESTMENT] = b
    # Minimums of the initial orders: refuse the whole setup (nothing is sent).
    ok = q > 0.0
    u_est = q * price * (1.0 - params[P_TAKER])
    for k in range(nl - 1):
        if k < e:
            px = _tick(params, state[A_LEV + k])
            ok = ok and _meets_min(params, _lot(params, u_est / (px * (1.0 + params[P_MAKER]))), px)
        else:
            ok = ok and _meets_min(params, q, _tick(params, state[A_LEV + k + 1]))
    if e > 0:
        ok = ok and _meets_min(params, _lot(params, q * e), price)
    if not ok:
        state[F_SETUP_ERROR] = 1.0
        H.transition_nb(state, C.ERROR, SETUP_FAILED)
        return 0
    H.transition_nb(state, C.ACTIVE, C.USER_START)
    n = 0
    for k in range(nl - 1):
        state[_cell(params, C_Q, k)] = q
        _reset_phase(params, state, k)
        if k < e:
            state[_cell(params, C_STATE, k)] = BUY_WAIT  # waits for the sale's proceeds
        else:
            state[_cell(params, C_STATE, k)] = SELL_WAIT
            state[_cell(params, C_TARGET, k)] = q
            n = _place_cell(params, state, actions, n, k)
    if e > 0:
        state[F_INIT_QTY] = _lot(params, q * e)
        n = _send_init_sale(params, state, actions, n)
    return _arm_sl(params, state, actions, n)


@kernel_jit
def _init_sale_done(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Share the initial sale's proceeds among the buy cells and place their buys."""
    state[F_INIT_ACTIVE] = 0.0
    sold = state[F_INIT_FILLED]
    total = state[F_INIT_QTY]
    share_all = 0.0
    for k in range(int(state[F_E])):
        share_all += state[_cell(params, C_Q, k)]
    for k in range(int(state[F_E])):
        if state[_cell(params, C_STATE, k)] != BUY_WAIT:
            continue
        q = state[_cell(params, C_Q, k)]
        state[_cell(params, C_U, k)] = state[F_INIT_VALUE] * q / share_all
        if sold < total - 1e-12:
            # Part of the sale did not happen: the cells own only what was sold.
            state[_cell(params, C_Q, k)] = _lot(params, q * sold / total)
        n = _place_cell(params, state, actions, n, k)
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
    for k in range(_n(params) - 1):
        n = _cancel_cell(params, state, actions, n, k)
        state[_cell(params, C_PENDING, k)] = 0.0
    if state[F_INIT_ACTIVE] > 0:
        n = cancel_tag_nb(actions, n, 0, TAG_INIT)
        state[F_INIT_ACTIVE] = 0.0
    if state[F_TRAIL_ACTIVE] > 0:
        n = cancel_tag_nb(actions, n, 0, TAG_TRAIL)
        state[F_TRAIL_ACTIVE] = 0.0
    if state[F_AF_ACTIVE] > 0:
        n = cancel_tag_nb(actions, n, 0, TAG_AF)
        state[F_AF_ACTIVE] = 0.0
    state[F_INIT_RETRY] = 0.0
    if state[F_SL] > 0:
        n = disarm_tag_nb(actions, n, TAG_SL)
        state[F_SL] = 0.0
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
    _finish(state)
    return n


@kernel_jit
def _finish(state: np.ndarray) -> None:
    state[F_CLOSE_ACTIVE] = 0.0
    if state[F_CLOSE_MODE] == MODE_TO_BASE:
        # Everything is base again: the whole result is realised, in base.
        state[H.H_REALIZED] = state[F_BASE] - state[H.H_INVESTMENT]
        state[F_CLOSE_PNL_SET] = 1.0
    H.finish_closing_nb(state)


@kernel_jit
def _trail(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    """Trailing down: the top sell leaves, is sold at market, and buys one level below."""
    if params[P_TRAIL] <= 0.0 or int(state[H.H_STATE]) != C.ACTIVE:
        return n
    nl = _n(params)
    top = nl - 2
    for k in range(nl - 1):
        if state[_cell(params, C_STATE, k)] == BUY_WAIT:
            return n
    if state[_cell(params, C_STATE, 0)] != SELL_WAIT:
        return n
    if state[_cell(params, C_STATE, top)] != SELL_WAIT:
        return n
    if state[F_INIT_ACTIVE] > 0 or state[F_AF_ACTIVE] > 0:
        return n
    H.transition_nb(state, C.TRAILING, C.TRAILING_STARTED)
    n = _cancel_cell(params, state, actions, n, top)
    partial = state[_cell(params, C_VALUE, top)] - state[_cell(params, C_FEE, top)]
    rest = _lot(params, state[_cell(params, C_TARGET, top)] - state[_cell(params, C_FILLED, top)])
    q_top = state[_cell(params, C_Q, top)]
    # Shift: cell j → j+1 (the top cell drops out), level i → i+1, new bottom level below.
    for arr in range(N_CELL_ARRAYS):
        for j in range(top - 1, -1, -1):
            state[_cell(params, arr, j + 1)] = state[_cell(params, arr, j)]
    for i in range(nl - 1, 0, -1):
        state[A_LEV + i] = state[A_LEV + i - 1]
    state[A_LEV] = state[A_LEV + 1] / (1.0 + params[P_S])
    state[F_OFFSET] += 1.0
    state[F_SHIFTS] += 1.0
    for arr in range(N_CELL_ARRAYS):
        state[_cell(params, arr, 0)] = 0.0
    state[_cell(params, C_STATE, 0)] = BUY_WAIT
    state[_cell(params, C_Q, 0)] = q_top
    state[_cell(params, C_U, 0)] = partial
    n = _arm_sl(params, state, actions, n)
    state[F_TRAIL_QTY] = rest
    state[F_TRAIL_FILLED] = 0.0
    state[F_TRAIL_VALUE] = 0.0
    if _meets_min(params, rest, event[K.E_PRICE]):
        state[F_TRAIL_ACTIVE] = 1.0
        return place_nb(actions, n, 0, -1.0, K.MARKET, np.nan, rest, TAG_TRAIL, False, False)
    return _trail_done(params, state, actions, n)


@kernel_jit
def _trail_done(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    state[F_TRAIL_ACTIVE] = 0.0
    state[_cell(params, C_U, 0)] += state[F_TRAIL_VALUE]
    if int(state[H.H_STATE]) == C.TRAILING:
        H.transition_nb(state, C.ACTIVE, C.TRAILING_DONE)
    return _place_cell(params, state, actions, n, 0)


@kernel_jit
def _complete_cell(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int, k: int
) -> int:
    """Cell ``k``'s order is done (filled, or cancelled with a filled part)."""
    cs = state[_cell(params, C_STATE, k)]
    filled = state[_cell(params, C_FILLED, k)]
    value = state[_cell(params, C_VALUE, k)]
    fee = state[_cell(params, C_FEE, k)]
    q = state[_cell(params, C_Q, k)]
    state[_cell(params, C_LIVE, k)] = 0.0
    _reset_phase(params, state, k)
    if cs == BUY_WAIT:
        profit = filled - q
        state[F_GRID_PROFIT] += profit
        state[H.H_REALIZED] += profit
        state[H.H_CYCLES] += 1.0
        state[F_BUY_FILLS] += 1.0
        if profit > 0.0:
            state[F_WINS] += 1.0
        state[_cell(params, C_U, k)] = 0.0
        state[_cell(params, C_STATE, k)] = SELL_WAIT
        free = state[F_BASE] - _committed_base(params, state, k)
        target = q if free >= q - 1e-12 else _lot(params, free)
        state[_cell(params, C_TARGET, k)] = target
        if (
            params[P_TP] >= 0.0
            and state[H.H_REALIZED] >= params[P_TP] * state[H.H_INVESTMENT] - 1e-12
            and _running(state)
        ):
            return _start_closing(params, state, event, actions, n, C.TAKE_PROFIT_HIT, MODE_TO_BASE)
        n = _place_cell(params, state, actions, n, k)
        if k == 0:
            n = _trail(params, state, event, actions, n)
    else:
        state[F_SELL_FILLS] += 1.0
        state[_cell(params, C_U, k)] = value - fee
        state[_cell(params, C_STATE, k)] = BUY_WAIT
        n = _place_cell(params, state, actions, n, k)
    return n


@kernel_jit
def _cell_index(params: np.ndarray, state: np.ndarray, tag: float) -> int:
    if tag < CELL_TAG0 - state[F_OFFSET] - 0.5:
        return -1
    k = int(np.floor(tag - CELL_TAG0 + state[F_OFFSET] + 0.5))
    if k < 0 or k > _n(params) - 2:
        return -1
    return k


@kernel_jit
def _af_done(params: np.ndarray, state: np.ndarray, actions: np.ndarray, n: int) -> int:
    """The add-funds sale is done: its proceeds go to the buy cells, which re-place."""
    state[F_AF_ACTIVE] = 0.0
    total = 0.0
    for k in range(_n(params) - 1):
        total += state[_cell(params, C_EXTRA, k)]
    for k in range(_n(params) - 1):
        extra = state[_cell(params, C_EXTRA, k)]
        if extra > 0.0 and total > 0.0:
            state[_cell(params, C_U, k)] += state[F_AF_VALUE] * extra / total
        state[_cell(params, C_EXTRA, k)] = 0.0
        if state[_cell(params, C_STATE, k)] == BUY_WAIT:
            n = _place_cell(params, state, actions, n, k)
    return n


@kernel_jit
def _add_funds(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int
) -> int:
    amount = 0.0
    bar = event[K.E_BAR]
    base = P_LEVELS + _n(params)
    for j in range(int(params[P_N_AF])):
        if params[base + 2 * j] == bar:
            amount += params[base + 2 * j + 1]
    busy = state[F_INIT_ACTIVE] > 0 or state[F_TRAIL_ACTIVE] > 0 or state[F_AF_ACTIVE] > 0
    if amount <= 0.0 or int(state[H.H_STATE]) != C.ACTIVE or busy:
        state[F_AF_REFUSED] += 1.0
        return n
    b_old = state[H.H_INVESTMENT]
    ratio = (b_old + amount) / b_old
    state[H.H_INVESTMENT] = b_old + amount
    state[F_BASE] += amount
    state[F_ADDED] += 1.0
    extra_total = 0.0
    for k in range(_n(params) - 1):
        cs = state[_cell(params, C_STATE, k)]
        q = state[_cell(params, C_Q, k)]
        q_new = _lot(params, q * ratio)
        state[_cell(params, C_Q, k)] = q_new
        state[_cell(params, C_EXTRA, k)] = 0.0
        if cs == SELL_WAIT:
            n = _cancel_cell(params, state, actions, n, k)
            state[_cell(params, C_TARGET, k)] += q_new - q
        elif cs == BUY_WAIT:
            n = _cancel_cell(params, state, actions, n, k)
            state[_cell(params, C_EXTRA, k)] = q_new - q
            extra_total += q_new - q
    state[F_Q] = _lot(params, state[F_Q] * ratio)
    for k in range(_n(params) - 1):
        if state[_cell(params, C_STATE, k)] == SELL_WAIT:
            n = _place_cell(params, state, actions, n, k)
    extra_total = _lot(params, extra_total)
    price = event[K.E_PRICE]
    if _meets_min(params, extra_total, price):
        state[F_AF_ACTIVE] = 1.0
        state[F_AF_QTY] = extra_total
        state[F_AF_FILLED] = 0.0
        state[F_AF_VALUE] = 0.0
        return place_nb(actions, n, 0, -1.0, K.MARKET, np.nan, extra_total, TAG_AF, False, False)
    state[F_AF_VALUE] = 0.0
    return _af_done(params, state, actions, n)


@kernel_jit
def _funds_pause(state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int) -> int:
    """A refusal for funds: pause (once per episode) and poll the balance."""
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
    for k in range(_n(params) - 1):
        cs = state[_cell(params, C_STATE, k)]
        left = state[_cell(params, C_TARGET, k)] - state[_cell(params, C_FILLED, k)]
        if state[_cell(params, C_PENDING, k)] > 0:
            if cs == BUY_WAIT:
                quote += (
                    state[_cell(params, C_U, k)]
                    - state[_cell(params, C_VALUE, k)]
                    - state[_cell(params, C_FEE, k)]
                )
            elif cs == SELL_WAIT:
                base += left
        elif state[_cell(params, C_LIVE, k)] > 0 and cs == SELL_WAIT:
            held += left
    if state[F_INIT_RETRY] > 0:
        base += state[F_INIT_QTY]
    return bool(event[K.E_FREE] >= quote - 1e-9 and state[F_POS] - held >= base - 1e-12)


@kernel_jit
def _resume(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, n: int, why: int
) -> int:
    if not H.transition_nb(state, int(state[H.H_RESUME_TO]), why):
        return n
    state[F_FUNDS_EPISODE] = 0.0
    n = _flush(params, state, actions, n)
    # A bottom buy that filled while paused may owe a shift.
    if state[_cell(params, C_STATE, 0)] == SELL_WAIT:
        n = _trail(params, state, event, actions, n)
    return n


@kernel_jit
def _on_fill(params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray) -> int:
    _book_fill(state, event)
    tag = event[K.E_TAG]
    done = event[K.E_REMAINING] <= 0.0
    qty = event[K.E_QTY]
    value = qty * event[K.E_PRICE]
    fee = event[K.E_FEE]
    n = 0
    if tag == TAG_INIT:
        state[F_INIT_FILLED] += qty
        state[F_INIT_VALUE] += value - fee
        if done and state[F_INIT_ACTIVE] > 0:
            n = _init_sale_done(params, state, actions, n)
        return n
    if tag == TAG_TRAIL:
        state[F_TRAIL_FILLED] += qty
        state[F_TRAIL_VALUE] += value - fee
        if done and state[F_TRAIL_ACTIVE] > 0:
            n = _trail_done(params, state, actions, n)
        return n
    if tag == TAG_AF:
        state[F_AF_FILLED] += qty
        state[F_AF_VALUE] += value - fee
        if done and state[F_AF_ACTIVE] > 0:
            n = _af_done(params, state, actions, n)
        return n
    if tag == TAG_CLOSE:
        if done and int(state[H.H_STATE]) == C.CLOSING:
            _finish(state)
        return n
    k = _cell_index(params, state, tag)
    if k < 0:
        return n
    state[_cell(params, C_FILLED, k)] += qty
    state[_cell(params, C_VALUE, k)] += value
    state[_cell(params, C_FEE, k)] += fee
    if not done or int(state[H.H_STATE]) == C.CLOSING:
        return n
    return _complete_cell(params, state, event, actions, n, k)


@kernel_jit
def _on_cancel(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray
) -> int:
    tag = event[K.E_TAG]
    reason = int(event[K.E_CODE])
    n = 0
    funds = reason == K.R_INSUFFICIENT_FUNDS and event[K.E_QTY] <= 0.0
    if tag == TAG_INIT:
        if state[F_INIT_ACTIVE] > 0:
            if funds:
                state[F_INIT_ACTIVE] = 0.0
                state[F_INIT_RETRY] = 1.0
                return _funds_pause(state, event, actions, n)
            if state[F_INIT_FILLED] > 0:
                return _init_sale_done(params, state, actions, n)
            state[F_INIT_ACTIVE] = 0.0
            for k in range(int(state[F_E])):
                state[_cell(params, C_STATE, k)] = IDLE
        return n
    if tag == TAG_TRAIL:
        if state[F_TRAIL_ACTIVE] > 0:
            n = _trail_done(params, state, actions, n)
        return n
    if tag == TAG_AF:
        if state[F_AF_ACTIVE] > 0:
            n = _af_done(params, state, actions, n)
        return n
    if tag == TAG_CLOSE:
        if int(state[H.H_STATE]) == C.CLOSING:
            _finish(state)  # what could not be closed stays as dust
        return n
    k = _cell_index(params, state, tag)
    if k < 0:
        return n
    if reason == K.R_USER and state[_cell(params, C_CXL, k)] > 0:
        state[_cell(params, C_CXL, k)] -= 1.0  # the bot's own cancel
        return n
    if state[_cell(params, C_LIVE, k)] <= 0:
        return n
    state[_cell(params, C_LIVE, k)] = 0.0
    if funds:
        state[_cell(params, C_PENDING, k)] = 1.0
        return _funds_pause(state, event, actions, n)
    if reason == K.R_MIN_SIZE:
        state[F_SKIPPED] += 1.0
    else:
        state[F_EXT_CANCELS] += 1.0
    if state[_cell(params, C_FILLED, k)] > 0.0:
        return _complete_cell(params, state, event, actions, n, k)
    state[_cell(params, C_STATE, k)] = IDLE
    return n


@kernel_jit
def _on_signal(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray
) -> int:
    code = int(event[K.E_CODE])
    s = int(state[H.H_STATE])
    if code == C.CMD_CLOSE:
        return _start_closing(params, state, event, actions, 0, C.CLOSE_SIGNAL, MODE_TO_BASE)
    if code == C.CMD_STOP:
        return _start_closing(params, state, event, actions, 0, C.USER_STOP, MODE_CANCEL)
    closer = forced_close_trigger_nb(code)
    if closer >= 0:
        return _start_closing(params, state, event, actions, 0, closer, MODE_TO_QUOTE)
    if code == C.CMD_PAUSE and _running(state):
        H.transition_nb(state, C.PAUSED, C.USER_PAUSE)
        return 0
    if code == C.CMD_RESUME and s == C.PAUSED:
        return _resume(params, state, event, actions, 0, C.USER_RESUME)
    if code == C.CMD_ADD_FUNDS:
        return _add_funds(params, state, event, actions, 0)
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
        return _resume(params, state, event, actions, 0, C.FUNDS_AVAILABLE)
    if outcome == POLL_WAIT:
        return funds_arm_owed_nb(state, F_FUNDS_EPISODE, event, tag_poll, actions, 0)
    return 0


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def btd_on_event_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
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
        if event[K.E_TAG] == TAG_SL and state[F_SL] > 0:
            state[F_SL] = 0.0
            return _start_closing(params, state, event, actions, 0, C.STOP_LOSS_HIT, MODE_TO_BASE)
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
}


def instrument_params(inst: Instrument | None) -> list[float]:
    """tick, tick decimals, lot, lot decimals, min qty, min notional, maker, taker."""
    if inst is None:
        return [0.0, 12.0, 0.0, 12.0, 0.0, 0.0, 0.0, 0.0]
    return [
        inst.tick,
        float(_decimals(inst.tick)),
        inst.lot,
        float(_decimals(inst.lot)),
        inst.min_qty,
        inst.min_notional,
        inst.maker_fee,
        inst.taker_fee,
    ]


def command_signals(
    n_bars: int, commands: dict[int, Any], add_funds: dict[int, float] | None = None
) -> np.ndarray | None:
    """The signal array of a backtest's scheduled commands (None when there are none)."""
    if not commands and not add_funds:
        return None
    out = np.zeros(n_bars, dtype=np.int64)
    for bar in add_funds or {}:
        if bar < n_bars:
            out[bar] = C.CMD_ADD_FUNDS
    for bar, code in commands.items():
        if bar < n_bars:
            out[bar] = COMMAND_CODES[code] if isinstance(code, str) else int(code)
    return out


class Btd(BotStrategy):
    """Buy the dip (see the module docstring for the behaviour and the choices made)."""

    name = "btd"
    Config: ClassVar[type[BtdConfig]] = BtdConfig
    kernel = btd_on_event_nb

    def __init__(self, config: BtdConfig | None = None, **fields: Any) -> None:
        super().__init__()
        self.config = config if config is not None else BtdConfig.parse(fields)
        self.instrument: Instrument | None = None
        self._params: np.ndarray | None = None

    def check(self, instruments: dict[str, Instrument]) -> None:
        inst = next(iter(instruments.values()))
        if inst.is_margin:
            raise ConfigError(
                "instrument", f"BTD trades spot; {inst.symbol} is a margin instrument"
            )
        self.instrument = inst
        self._params = None

    def levels(self) -> np.ndarray:
        """Range mode: the levels (count mode levels depend on the start price)."""
        c = self.config
        if c.low_price is None or c.high_price is None:
            return np.zeros(0)
        if c.grid_levels is not None:
            return geometric_levels(c.low_price, c.high_price, c.grid_levels)
        return levels_from_step(c.low_price, c.high_price, c.grid_step or 1.0)

    def step(self) -> float:
        c = self.config
        if c.grid_step is not None:
            return c.grid_step / 100.0
        assert c.low_price is not None and c.high_price is not None and c.grid_levels
        return float((c.high_price / c.low_price) ** (1.0 / (c.grid_levels - 1)) - 1.0)

    @property
    def params(self) -> np.ndarray:
        if self._params is not None:
            return self._params
        c = self.config
        n = c.n_levels()
        down, up = c.counts() if c.low_price is None else (0, 0)
        head = [
            0.0 if c.low_price is not None else 1.0,
            float(n),
            c.investment,
            self.step(),
            float(down),
            float(up),
            1.0 if c.trailing else 0.0,
            c.stop_loss_pct / 100.0 if c.stop_loss_enabled else -1.0,
            (c.take_profit_pct or 0.0) / 100.0 if c.take_profit_enabled else -1.0,
            *instrument_params(self.instrument),
            float(len(c.add_funds)),
        ]
        p = np.zeros(P_LEVELS + n + 2 * len(c.add_funds))
        p[: len(head)] = head
        levels = self.levels()
        p[P_LEVELS : P_LEVELS + levels.size] = levels
        for j, (bar, amount) in enumerate(sorted(c.add_funds.items())):
            p[P_LEVELS + n + 2 * j] = bar
            p[P_LEVELS + n + 2 * j + 1] = amount
        self._params = p
        return p

    def initial_state(self, data: MarketData) -> np.ndarray:
        state = H.new_state(state_size(self.config.n_levels()))
        state[F_DATA_END] = float(data.bar_time_ms(-1)) if data.n_bars else 0.0
        return state

    def signals(self, data: MarketData) -> np.ndarray | None:
        return command_signals(data.n_bars, self.config.commands, self.config.add_funds)

    # --------------------------------------------------------------- reading the state
    def grid_levels(self) -> np.ndarray:
        """The current levels (after any trailing shift)."""
        n = self.config.n_levels()
        return self.state[A_LEV : A_LEV + n].copy()

    def cells(self) -> dict[str, np.ndarray]:
        n = self.config.n_levels()
        names = ("state", "q", "u", "target", "filled", "value", "fee", "live", "pending")
        out = {}
        for arr, name in enumerate(names):
            start = A_LEV + n + arr * n
            out[name] = self.state[start : start + n - 1].copy()
        return out

    def metrics(self) -> dict[str, Any]:
        if not self.state.size:
            return {}
        s = self.state
        out = self.bot_metrics()
        price = float(s[F_LAST_PX])
        base = float(s[F_BASE])
        quote = float(s[F_QUOTE])
        cells = self.cells()
        buying = cells["state"] == BUY_WAIT
        committed_quote = float(
            (cells["u"][buying] - cells["value"][buying] - cells["fee"][buying]).sum()
        )
        end = max(float(s[F_LAST_T]), float(s[F_DATA_END]))
        days = max(1.0, (end - s[F_START_T]) / 86_400_000.0)
        cycles = int(s[H.H_CYCLES])
        value = base * price + quote if price > 0 else float("nan")
        out.update(
            {
                "investment_base": float(s[H.H_INVESTMENT]),
                "base_profit": float(s[H.H_REALIZED]),
                "base_profit_quote": float(s[H.H_REALIZED]) * price,
                "grid_profit_base": float(s[F_GRID_PROFIT]),
                "base_pnl": float(base + quote / price - s[H.H_INVESTMENT]) if price > 0 else 0.0,
                "cycles": cycles,
                "shifts": int(s[F_SHIFTS]),
                "daily_average_base": float(s[H.H_REALIZED]) / days,
                "win_rate": float(s[F_WINS]) / cycles if cycles else 0.0,
                "base_balance": base,
                "quote_balance": quote,
                "base_share": base * price / value if value and value == value else 0.0,
                "dust_quote": max(0.0, quote - committed_quote),
                "free_base": base
                - float(cells["target"][cells["state"] == SELL_WAIT].sum())
                + float(cells["filled"][cells["state"] == SELL_WAIT].sum()),
                "stop_loss_level": float(s[F_SL]),
                "lowest_level": float(s[A_LEV]),
                "highest_level": float(s[A_LEV + self.config.n_levels() - 1]),
                "skipped_min": int(s[F_SKIPPED]),
                "external_cancels": int(s[F_EXT_CANCELS]),
                "ignored_signals": int(s[F_IGNORED]),
                "add_funds_accepted": int(s[F_ADDED]),
                "add_funds_refused": int(s[F_AF_REFUSED]),
                "funds_pauses": int(s[F_FUNDS_PAUSES]),
                "setup_failed": bool(s[F_SETUP_ERROR] > 0),
            }
        )
        if s[F_FUNDS_WARN] > 0:
            logger.warning("btd: still paused for funds after the last balance poll")
        return out
